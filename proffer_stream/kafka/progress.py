"""Whether consumer groups keep up: lag, and progress since the last look."""

from __future__ import annotations

import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from proffer_stream.kafka.lag import committed_offsets, lag, topic_partitions


@dataclass
class GroupWatch:
    """A consumer group and the topics it must keep up with."""

    name: str
    group: str
    topics: list[str]
    committed: int = -1
    moved_at: float = 0.0


class ProgressWatch:
    """Says which groups have lag and have committed nothing for ``stall_seconds``.

    Uses one admin client and one group-less consumer for all checks, started lazily.
    Reported end offsets are used as they are: on the local broker they can be short by
    a batch, which can only hide a lag of a few records, never invent one.
    """

    def __init__(self, bootstrap_servers: str, groups: list[GroupWatch], stall_seconds: float):
        self.bootstrap_servers = bootstrap_servers
        self.groups = groups
        self.stall_seconds = stall_seconds
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def stalled(self) -> dict[str, bool]:
        """Each group's name -> whether it is stalled."""
        admin, consumer = await self._clients()
        now = time.monotonic()
        answer = {}
        for watch in self.groups:
            partitions = await topic_partitions(consumer, watch.topics)
            committed = await committed_offsets(admin, watch.group, partitions)
            behind = lag(await consumer.end_offsets(partitions), committed)
            total = sum(committed.values())
            if total != watch.committed or not behind:
                watch.committed, watch.moved_at = total, now
            answer[watch.name] = now - watch.moved_at > self.stall_seconds
        return answer

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
        if self._admin is not None:
            await self._admin.close()

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None or self._consumer is None:
            self._admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap_servers)
            self._consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap_servers, group_id=None
            )
            await self._admin.start()
            await self._consumer.start()
        return self._admin, self._consumer
