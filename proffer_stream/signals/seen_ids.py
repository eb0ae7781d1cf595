"""Which event ids a customer's profile has already counted, over days. Pure logic.

A client may re-send an event days later, with any number of events in between, so ids
are remembered per customer in day buckets (the day they were first counted) for a
configured number of days. Each id is kept as a 64-bit hash with the offset of the
record that counted it: an entry above the profile's source offset was written for a
record whose profile never reached the changelog (a crash between the two writes), so it
is not a sighting, and the replayed record counts the event as it should. The other way
round, ids written after their profile and lost in a crash, a replayed record remembers
again (:meth:`SeenIds.remember_replayed`).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable
from datetime import datetime

DAY_SECONDS = 86_400
_ENTRY = struct.Struct("<qq")
MAX_BUCKET_ENTRIES = 32_768
"""Most ids in one stored bucket (512 KiB): a busier day spills into the next chunk."""


def id_hash(event_id: str) -> int:
    """A signed 64-bit hash of an event id (collisions: about n^2 / 2^65 for n ids)."""
    digest = hashlib.blake2b(event_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def day_of(at: datetime) -> int:
    """The epoch day ``at`` falls in."""
    return int(at.timestamp()) // DAY_SECONDS


def days_kept(now: datetime, days: int) -> range:
    """The days whose buckets still count: today and the ``days`` before it."""
    today = day_of(now)
    return range(today - days, today + 1)


def pack(entries: dict[int, int]) -> bytes:
    """A bucket's stored form: (hash, offset) pairs, 16 bytes each."""
    return b"".join(_ENTRY.pack(hash_, offset) for hash_, offset in entries.items())


def unpack(value: bytes) -> dict[int, int]:
    """The (hash -> offset) entries of a stored bucket."""
    return dict(_ENTRY.iter_unpack(value))


class SeenIds:
    """A customer's remembered ids: the stored buckets, plus what this batch adds today.

    New ids go to the last chunk of today's bucket, and to a new chunk once it is full;
    :meth:`changed` names the chunks to write back.
    """

    def __init__(self, today: int, buckets: Iterable[tuple[int, int, dict[int, int]]]) -> None:
        self.today = today
        self._entries: dict[int, int] = {}
        self._chunks: dict[int, dict[int, int]] = {}
        self._days: dict[int, int] = {}
        for day, chunk, entries in buckets:
            self._entries.update(entries)
            self._days[day] = max(self._days.get(day, 0), chunk + 1)
            if day == today:
                self._chunks[chunk] = entries
        self._chunk = max(self._chunks, default=0)
        self._changed: set[int] = set()

    def first_sighting(self, event_id: str, offset: int, applied_up_to: int) -> bool:
        """Whether the event was not counted before; if so, remember it at ``offset``.

        ``applied_up_to`` is the source offset of the profile: entries above it never
        reached the profile, so they do not count as sightings.
        """
        hash_ = id_hash(event_id)
        seen_at = self._entries.get(hash_)
        if seen_at is not None and seen_at <= applied_up_to:
            return False
        self._remember(hash_, offset)
        return True

    def remember_replayed(self, event_ids: Iterable[str], offset: int) -> None:
        """Remember, at ``offset``, the ids of a replayed record the profile applied, those
        not remembered already (ids written after the profile, lost in a crash)."""
        for event_id in event_ids:
            hash_ = id_hash(event_id)
            if hash_ not in self._entries:
                self._remember(hash_, offset)

    def add_counted(self, event_ids: Iterable[str]) -> None:
        """Remember ids counted by a profile restored from elsewhere (any offset)."""
        for event_id in event_ids:
            self._remember(id_hash(event_id), -1)

    def changed(self) -> dict[int, dict[int, int]]:
        """Today's chunks that this batch changed, by chunk number."""
        return {chunk: self._chunks[chunk] for chunk in self._changed}

    def mark_saved(self) -> None:
        """The changed chunks are written: the next :meth:`changed` names only newer ones."""
        self._changed.clear()

    def chunks_by_day(self) -> dict[int, int]:
        """How many chunks each day's bucket has (today's with what this batch added): what
        a profile records so that the next batch reads only those."""
        days = dict(self._days)
        if self._chunks:
            days[self.today] = max(self._chunks) + 1
        return days

    def _remember(self, hash_: int, offset: int) -> None:
        """Seen at ``offset``, and kept in the last chunk of today's bucket."""
        self._entries[hash_] = offset
        current = self._chunks.setdefault(self._chunk, {})
        if hash_ not in current and len(current) >= MAX_BUCKET_ENTRIES:
            self._chunk += 1
            current = self._chunks.setdefault(self._chunk, {})
        current[hash_] = offset
        self._changed.add(self._chunk)
