"""Writing the worker's Faust tables once per batch: the value in the store now, its
changelog record held back and coalesced until the next offset commit."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from faust.types import TableT

_Held = tuple[bytes, int | None]
"""A held changelog value and its partition (None: the partitioner's choice)."""


class HeldChangelog:
    """Changelog records the agents wrote, the last per key, until :meth:`flush` sends them.

    A busy customer's profile and ids change with every batch; sending every version
    cost the signals agent a quarter of its time at one event per record, and only the
    last one matters for recovery. The worker's consumer flushes before it commits
    offsets (and Faust flushes the producer after that), so a table's changelog is never
    behind a committed offset, as when every write was sent at once; a timer flushes
    too, which bounds how stale the changelog's readers (the sink's customers rows) are.
    """

    def __init__(self) -> None:
        self._held: dict[str, tuple[TableT[bytes, bytes], dict[bytes, _Held]]] = {}
        self._flushing = asyncio.Lock()

    def __len__(self) -> int:
        return sum(len(records) for _, records in self._held.values())

    def hold(
        self, table: TableT[bytes, bytes], key: bytes, value: bytes, partition: int | None
    ) -> None:
        """Hold ``key``'s new value for ``table``'s changelog (replacing one held before)."""
        held = self._held.get(table.name)
        if held is None:
            held = self._held[table.name] = (table, {})
        held[1][key] = (value, partition)

    async def flush(self) -> None:
        """Send what is held: table by table, in the order the tables were first written
        (a customer's event ids go out before the profile that counted them, as when they
        were sent at once); one flush at a time, so that a key's newer value is never sent
        before its older one."""
        async with self._flushing:
            held, self._held = self._held, {}
            for table, records in held.values():
                changelog = table.changelog_topic.get_topic_name()
                send = table.app.producer.send
                for key, (value, partition) in records.items():
                    await send(changelog, key, value, partition, None, None)


def write_through(
    table: TableT[bytes, bytes],
    items: Iterable[tuple[bytes, bytes]],
    changelog: HeldChangelog,
    partition: int | None = None,
) -> None:
    """Put each (key, value) in ``table``'s store and hold its changelog record.

    The same effect as ``table[key] = value`` at a fraction of its cost: Faust's per-key
    path (future, eager partitioning, callback, sensors) cost ~270 µs a key here.
    ``partition`` None lets the partitioner (murmur2 on the key, as producers use) choose.
    """
    for key, value in items:
        table.data[key] = value
        changelog.hold(table, key, value, partition)
