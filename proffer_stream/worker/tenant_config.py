"""Following ``proffer.tenant-config``: every tenant's rules and policy, on every worker.

Each worker reads the whole compacted topic (no consumer group: every worker needs
every tenant) into a :class:`TenantConfigs` and then follows it, so a change is in force
everywhere within a fetch. The topic is the source of truth (an embedded broker that
lost it gets it back from PostgreSQL before any worker starts:
:func:`proffer_stream.local.restore.restore_tenant_config`). The agents wait for
:attr:`ConfigFollower.ready` (the topic read to its end once) before their first batch,
so no event is judged by stale rules at start.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from proffer_stream.core.settings import Settings
from proffer_stream.kafka.lag import log_ends_now, read_to_highwater, topic_partitions
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
        self._read: dict[TopicPartition, int] = {}
        self._advanced = asyncio.Event()
        self._partitions: list[TopicPartition] = []

    async def caught_up(self) -> None:
        """Return once every change on the topic now has been read and applied."""
        await self.ready.wait()
        ends = await log_ends_now(self.settings.bootstrap_servers, self._partitions)
        while any(self._read.get(tp, 0) < end for tp, end in ends.items()):
            self._advanced.clear()
            await self._advanced.wait()

    async def run(self) -> None:
        """Read the topic to its end, then follow it."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=self.settings.fetch_max_wait_ms,
        )
        await consumer.start()
        try:
            partitions = self._partitions = await topic_partitions(consumer, [self.topic])
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            started = time.monotonic()
            while True:
                # Short polls until the topic is read: the agents wait for it at start.
                fetched = await consumer.getmany(timeout_ms=500 if self.ready.is_set() else 20)
                for tp, records in fetched.items():
                    for record in records:
                        self._apply(record.value)
                    self._read[tp] = await consumer.position(tp)
                if fetched:
                    self._advanced.set()
                if not self.ready.is_set() and (
                    (not fetched and await read_to_highwater(consumer, partitions))
                    or time.monotonic() - started > CATCH_UP_SECONDS
                ):
                    self.ready.set()
                    log.info("tenant config read: %s", self.topic)
        finally:
            await consumer.stop()

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
