"""Calendar periods in a member's time zone: the windows periodic usage limits count in.

A day is the member's local day (23 or 25 hours across a DST change), a week starts on
Monday (ISO 8601) at local midnight, a month on its 1st, a year on 1 January. Bounds
are returned in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from proffer_stream.catalog.models import Timespan


class UnknownTimeZone(ValueError):
    """A time zone name the IANA database does not know."""


LONGEST_ZONE_NAME = 64
"""IANA names are at most 30 characters; a longer one is not looked up."""


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name`` (``Europe/Warsaw``), or :class:`UnknownTimeZone`.

    Any name that is not a zone is refused as one: a folder of the database
    (``Europe``, which ``ZoneInfo`` answers with ``IsADirectoryError``), a name too long
    for a path (``OSError``), a path outside it (``ValueError``).
    """
    try:
        if len(name) > LONGEST_ZONE_NAME:
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise UnknownTimeZone(f"{name!r} is not an IANA time zone (e.g. 'Europe/Warsaw')") from None


def period(timespan: Timespan, at: datetime, tz: str) -> tuple[datetime, datetime]:
    """The calendar ``timespan`` holding ``at`` in ``tz``: its start and end, in UTC
    (start inclusive, end exclusive)."""
    local = at.astimezone(zone(tz))
    if timespan == "hour":
        # The local hour, counted on the UTC clock: across a fall-back change the
        # repeated hour is two periods, and a zone 30 minutes off UTC starts at :30.
        into = timedelta(minutes=local.minute, seconds=local.second, microseconds=local.microsecond)
        start_utc = at.astimezone(UTC) - into
        return start_utc, start_utc + timedelta(hours=1)
    start = _start(timespan, local)
    end = _next(timespan, start)
    return _utc(start), _utc(end)


def _start(timespan: Timespan, local: datetime) -> datetime:
    naive = local.replace(tzinfo=None, fold=0)
    midnight = naive.replace(hour=0, minute=0, second=0, microsecond=0)
    if timespan == "week":
        midnight -= timedelta(days=midnight.weekday())
    elif timespan == "month":
        midnight = midnight.replace(day=1)
    elif timespan == "year":
        midnight = midnight.replace(month=1, day=1)
    return midnight.replace(tzinfo=local.tzinfo)


def _next(timespan: Timespan, start: datetime) -> datetime:
    naive = start.replace(tzinfo=None)
    if timespan == "day":
        naive += timedelta(days=1)
    elif timespan == "week":
        naive += timedelta(days=7)
    elif timespan == "month":
        naive = (naive.replace(day=28) + timedelta(days=4)).replace(day=1)
    else:
        naive = naive.replace(year=naive.year + 1)
    return naive.replace(tzinfo=start.tzinfo)


def _utc(local: datetime) -> datetime:
    """A local wall time in UTC. A midnight a DST change skips (Santiago springs forward
    at midnight) is read with the offset before the change (PEP 495, ``fold=0``): the
    moment the clock jumps, when the new day begins."""
    return local.replace(fold=0).astimezone(UTC)
