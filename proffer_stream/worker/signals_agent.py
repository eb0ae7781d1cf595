"""The signals agent: folds ``proffer.events`` records into each customer's profile.

Exactness under at-least-once delivery: a customer's records all live in one
partition, so each profile remembers the offset of the last record it applied and
skips anything at or below it on a replay; recent event ids catch client re-sends.
Each record stands on its own: one that cannot be read or applied goes to the
dead-letter topic with its reason and position, and the rest of the batch is applied.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from faust.types import EventT

from proffer_stream.core.errors import BadRecord
from proffer_stream.core.types import CustomerKey
from proffer_stream.ingest.records import EventRecord, read_event_record
from proffer_stream.kafka.deadletter import SourceRecord
from proffer_stream.signals.fold import apply_record
from proffer_stream.signals.models import CustomerSignals
from proffer_stream.worker.deadletters import DeadLetters, source_record
from proffer_stream.worker.profiles import ProfileStore
from proffer_stream.worker.progress import Progress
from proffer_stream.worker.reroute import Rerouter

STAGE = "signals-agent"


class SignalsAgent:
    """Applies batches of ``proffer.events`` records to the profiles they concern."""

    def __init__(
        self,
        profiles: ProfileStore,
        dead_letters: DeadLetters,
        rerouter: Rerouter,
        *,
        remembered_ids: int,
    ) -> None:
        self.profiles = profiles
        self.dead_letters = dead_letters
        self.rerouter = rerouter
        self.remembered_ids = remembered_ids
        self.progress = Progress()

    async def process(self, batch: Sequence[EventT[bytes]]) -> None:
        """Apply a batch; what cannot be applied is dead-lettered, never stops the rest."""
        sources = [source_record(event) for event in batch]
        readable = []
        for source in sources:
            record = await self._read(source)
            if record is None:
                continue
            if self.rerouter.misplaced(source):
                await self.rerouter.move(source, record)
                continue
            readable.append((source, record))
        states, failed = await self.profiles.load({record.customer_key for _, record in readable})
        now = datetime.now(UTC)
        applied: dict[CustomerKey, list[EventRecord]] = {}
        for source, record in readable:
            key = record.customer_key
            if key in failed:
                await self._reject(source, BadRecord("processing_error", _why(failed[key])))
                continue
            replay = record.offset <= states[key].source_offset
            try:
                self._apply(states[key], record, now)
            except Exception as exc:  # this record only; the batch goes on
                states[key] = await self._replay(key, applied.get(key, []), now)
                await self._reject(source, BadRecord("processing_error", _why(exc)))
                continue
            if not replay:
                applied.setdefault(key, []).append(record)
        await self.profiles.save(states[key] for key in applied)

    def report(self) -> None:
        self.progress.report()

    def _apply(self, state: CustomerSignals, record: EventRecord, now: datetime) -> None:
        counted = self._fold(state, record, now)
        self.progress.record_applied(len(record.events), counted)

    def _fold(self, state: CustomerSignals, record: EventRecord, now: datetime) -> int:
        return apply_record(
            state,
            record.batch.customer,
            record.events,
            offset=record.offset,
            now=now,
            remembered_ids=self.remembered_ids,
        )

    async def _replay(
        self, key: CustomerKey, records: list[EventRecord], now: datetime
    ) -> CustomerSignals:
        """The customer's profile before a failed record: as loaded, plus the good records.

        ``apply_record`` works in place, so a record that raised may have left half its
        effect; what the profile was loaded from (written once per batch) is untouched.
        """
        states, _ = await self.profiles.load([key])
        state = states[key]
        for record in records:
            self._fold(state, record, now)
        return state

    async def _read(self, source: SourceRecord) -> EventRecord | None:
        try:
            return read_event_record(
                source.key,
                source.value,
                partition=source.partition,
                offset=source.offset,
                timestamp_ms=source.timestamp_ms or 0,
            )
        except BadRecord as error:
            await self._reject(source, error)
            return None

    async def _reject(self, source: SourceRecord, error: BadRecord) -> None:
        await self.dead_letters.send(source, error)
        self.progress.dead_lettered()


def _why(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:1000]
