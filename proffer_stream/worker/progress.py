"""What the signals agent did, as metrics and as one log line every few seconds."""

from __future__ import annotations

import logging
import time

from proffer_stream.core import metrics

log = logging.getLogger(__name__)


class Progress:
    """Totals of the agent's work, reported when they changed."""

    def __init__(self) -> None:
        self.totals = {"records": 0, "counted": 0, "not_counted": 0, "dead_letters": 0}
        self._reported = dict(self.totals)
        self._reported_at = time.monotonic()

    def record_applied(self, events: int, counted: int) -> None:
        not_counted = events - counted
        self.totals["records"] += 1
        self.totals["counted"] += counted
        self.totals["not_counted"] += not_counted
        metrics.RECORDS_PROCESSED.inc()
        metrics.EVENTS_COUNTED.inc(counted)
        metrics.EVENTS_NOT_COUNTED.inc(not_counted)

    def dead_lettered(self) -> None:
        self.totals["dead_letters"] += 1

    def report(self) -> None:
        """Log what was done since the last report, if anything."""
        if self.totals == self._reported:
            return
        elapsed = time.monotonic() - self._reported_at
        counted = self.totals["counted"] - self._reported["counted"]
        log.info(
            "signals: %d records, %d events counted (%.0f/s), %d seen again, %d dead-lettered",
            self.totals["records"],
            self.totals["counted"],
            counted / elapsed,
            self.totals["not_counted"],
            self.totals["dead_letters"],
        )
        self._reported = dict(self.totals)
        self._reported_at = time.monotonic()
