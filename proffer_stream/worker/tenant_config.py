"""Following ``proffer.tenant-config``: every tenant's rules and policy, on every worker.

Each worker reads the whole compacted topic (no consumer group: every worker needs
every tenant) into a :class:`TenantConfigs`, after the changes PostgreSQL keeps (for a
broker that lost its log), and then follows it, so a change is in force everywhere
within a fetch. The agents wait for :attr:`ConfigFollower.ready` (the topic read to its
end once) before their first batch, so no event is judged by stale rules at start.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from proffer_stream.core.retry import retry_transient
from proffer_stream.core.settings import Settings
from proffer_stream.db.pool import TRANSIENT_ERRORS, connect_pool
from proffer_stream.db.tenant_config import all_changes
from proffer_stream.kafka.lag import topic_partitions
from proffer_stream.kafka.topics import topics_for
from proffer_stream.offers.config import ConfigChange, TenantConfigs

log = logging.getLogger(__name__)

CATCH_UP_SECONDS = 30.0
"""Longest the agents wait for the topic to be read at start before going on anyway."""


class ConfigFollower:
    """Keeps ``configs`` at the latest change of every tenant's rules and policy."""

    def __init__(self, configs: TenantConfigs, settings: Settings) -> None:
        self.configs = configs
        self.settings = settings
        self.topic = topics_for(settings).tenant_config.name
        self.ready = asyncio.Event()

    async def run(self) -> None:
        """Load what PostgreSQL keeps, read the topic to its end, then follow it."""
        await self._load_stored()
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=self.settings.fetch_max_wait_ms,
        )
        await consumer.start()
        try:
            partitions = await topic_partitions(consumer, [self.topic])
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            started = time.monotonic()
            while True:
                fetched = await consumer.getmany(timeout_ms=500)
                for records in fetched.values():
                    for record in records:
                        self._apply(record.value)
                if not self.ready.is_set() and (
                    (not fetched and await _at_end(consumer, partitions))
                    or time.monotonic() - started > CATCH_UP_SECONDS
                ):
                    self.ready.set()
                    log.info("tenant config read: %s", self.topic)
        finally:
            await consumer.stop()

    async def _load_stored(self) -> None:
        async def load() -> list[ConfigChange]:
            pool = await connect_pool(self.settings.database_url, max_size=1)
            try:
                return await all_changes(pool)
            finally:
                await pool.close()

        for change in await retry_transient(load, transient=TRANSIENT_ERRORS, what="PostgreSQL"):
            self.configs.apply(change)

    def _apply(self, value: bytes | None) -> None:
        if value is None:
            return
        try:
            change = ConfigChange.model_validate_json(value)
        except ValidationError as exc:  # the gateway validates; this is another producer's
            log.warning("skipped a tenant config record that does not parse: %s", exc)
            return
        if self.configs.apply(change) and self.ready.is_set():
            log.info(
                "tenant %s: %s version %d in force", change.tenant_id, change.kind, change.version
            )


async def _at_end(consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> bool:
    """Every partition read up to the high watermark its last fetch reported."""
    for tp in partitions:
        highwater = consumer.highwater(tp)
        if highwater is None or await consumer.position(tp) < highwater:
            return False
    return True
