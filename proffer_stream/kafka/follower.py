"""Following a compacted topic into memory: read it whole, then keep up with it.

Tenant config and catalog definitions are small and every process needs every tenant's,
so each process reads the whole compacted topic with no consumer group (from the start,
every time it starts) and then follows it: a change is known everywhere within a fetch.
:attr:`TopicFollower.ready` is set once the topic has been read to its end (or after
:data:`CATCH_UP_SECONDS`, so that a slow broker cannot hold a process up for ever).
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from proffer_stream.core.settings import Settings
from proffer_stream.kafka.lag import log_ends_now, read_to_highwater, topic_partitions

log = logging.getLogger(__name__)

CATCH_UP_SECONDS = 30.0
"""Longest :attr:`TopicFollower.ready` waits for the topic to be read at start."""
RETRY_SECONDS = 1.0
"""Wait before reading the topic again after the broker failed the follower."""


class TopicFollower:
    """Reads ``topic`` from its start and follows it; a subclass applies each record."""

    def __init__(self, settings: Settings, topic: str, what: str) -> None:
        self.settings = settings
        self.topic = topic
        self.what = what
        self.ready = asyncio.Event()
        self._advanced = asyncio.Event()
        self._read: dict[TopicPartition, int] = {}
        self._partitions: list[TopicPartition] = []

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """Take one record of the topic in (a tombstone's ``value`` is None)."""
        raise NotImplementedError

    async def caught_up(self) -> None:
        """Return once every record on the topic now has been read and applied."""
        await self.ready.wait()
        ends = await log_ends_now(self.settings.bootstrap_servers, self._partitions)
        while any(self._read.get(tp, 0) < end for tp, end in ends.items()):
            await self.advanced()

    async def advanced(self) -> None:
        """Return after the next fetch that read records."""
        self._advanced.clear()
        await self._advanced.wait()

    async def run(self) -> None:
        """Read the topic to its end, then follow it; read it again after a broker failure."""
        while True:
            try:
                await self._follow()
            except KafkaError as exc:
                log.warning("following %s failed (%r); reading it again", self.topic, exc)
            await asyncio.sleep(RETRY_SECONDS)

    async def _follow(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=self.settings.fetch_max_wait_ms,
        )
        await consumer.start()
        try:
            partitions = self._partitions = await topic_partitions(consumer, [self.topic])
            if not partitions:  # no topic yet: nothing was written; look again later
                self.ready.set()
                return
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            started = time.monotonic()
            while True:
                # Short polls until the topic is read: the processes wait for it at start.
                fetched = await consumer.getmany(timeout_ms=500 if self.ready.is_set() else 20)
                for tp, records in fetched.items():
                    for record in records:
                        self.apply(record.key, record.value)
                    self._read[tp] = await consumer.position(tp)
                if fetched:
                    self._advanced.set()
                if not self.ready.is_set() and (
                    (not fetched and await read_to_highwater(consumer, partitions))
                    or time.monotonic() - started > CATCH_UP_SECONDS
                ):
                    self.ready.set()
                    log.info("%s read: %s", self.what, self.topic)
        finally:
            await consumer.stop()
