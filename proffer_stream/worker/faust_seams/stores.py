"""Seams: the table manager's start, and on-disk stores that hold a log the broker lost.

A worker's RocksDB stores survive its restarts, and each records the changelog offset it
holds (``Store.persisted_offset``), so that recovery reads only what came after. But a
broker that lost its logs (the embedded broker keeps them in memory only) starts every
topic again at offset 0: a store from before would then hold profiles whose applied
offsets name records of the old log, and the new log's records at those offsets would be
skipped as replays. Faust's ``recovery_consistency_check`` catches a persisted offset
beyond the changelog's end only while the changelog is not empty, and then stops the
worker. Here, before Faust starts, a store whose offset is at or beyond its changelog's
end is taken for what it is and every store is dropped: the tables are then rebuilt from
the changelogs, and what they lack from PostgreSQL.
"""

from __future__ import annotations

import asyncio
import logging

import faust
from aiokafka import TopicPartition
from faust.stores.rocksdb import Store as RocksDBStore
from faust.tables import TableManager
from faust.types import TP

from proffer_stream.kafka.lag import log_ends_now

log = logging.getLogger(__name__)


class PromptTableManager(TableManager):
    """Faust's table manager, without the second it waits before it registers the tables.

    Works around: ``TableManager.on_start`` sleeps 1 s before it registers the tables'
    changelog channels and starts recovery, and the consumer subscribes only after (the
    conductor waits for the tables): a second of every worker start and restart. Here
    every table is declared when the app is created, so nothing needs the wait. Bought:
    1 s of the 5 s a restarted worker may take to count again (bench/restart.py).
    """

    async def on_start(self) -> None:
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()


def persisted_changelog_offsets(app: faust.App) -> dict[TopicPartition, int]:
    """The changelog offset each on-disk store partition of the app's tables holds."""
    offsets: dict[TopicPartition, int] = {}
    for table in app.tables.values():
        store = table.data
        if not isinstance(store, RocksDBStore):
            continue
        changelog = table.changelog_topic.get_topic_name()
        for partition in range(table.partitions or 0):
            if store.partition_path(partition).exists():
                offset = store.persisted_offset(TP(changelog, partition))
                if offset is not None:
                    offsets[TopicPartition(changelog, partition)] = offset
    return offsets


def drop_stores_of_a_lost_log(app: faust.App, bootstrap_servers: str) -> bool:
    """Drop every table store if one holds changelog offsets the broker does not have;
    True if it did. Call before the worker starts (it runs an event loop of its own)."""
    offsets = persisted_changelog_offsets(app)
    if not offsets:
        return False
    loop = asyncio.new_event_loop()
    try:
        ends = loop.run_until_complete(log_ends_now(bootstrap_servers, list(offsets)))
    finally:
        loop.close()
    lost = sorted(f"{tp.topic}[{tp.partition}]" for tp, at in offsets.items() if at >= ends[tp])
    if not lost:
        return False
    log.warning(
        "the table stores on disk hold changelog records the broker does not have (%s):"
        " the broker lost its logs. Dropping the stores; the tables are rebuilt from the"
        " changelogs and PostgreSQL.",
        ", ".join(lost),
    )
    for table in app.tables.values():
        if isinstance(table.data, RocksDBStore):
            table.data.reset_state()
    return True
