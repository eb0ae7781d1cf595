"""Whether consumer groups keep up: lag, and progress since the last look."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from proffer_stream.kafka.lag import committed_offsets, topic_partitions


@dataclass
class GroupWatch:
    """A consumer group and the topics it must keep up with, watched partition by
    partition: one stuck partition (an agent, or one process of several) shows even
    while the group's other partitions move."""

    name: str
    group: str
    topics: list[str]
    committed: dict[TopicPartition, int] = field(default_factory=dict)
    moved_at: dict[TopicPartition, float] = field(default_factory=dict)

    def stalled(
        self,
        committed: Mapping[TopicPartition, int],
        ends: Mapping[TopicPartition, int],
        now: float,
        stall_seconds: float,
    ) -> list[TopicPartition]:
        """The partitions with lag whose committed offset has not moved for
        ``stall_seconds``, given the offsets and ends seen ``now``."""
        for tp, offset in committed.items():
            if offset != self.committed.get(tp) or ends.get(tp, 0) <= offset:
                self.committed[tp], self.moved_at[tp] = offset, now
        return [tp for tp in committed if now - self.moved_at[tp] > stall_seconds]


class ProgressWatch:
    """Says which groups have partitions with lag that committed nothing for
    ``stall_seconds``.

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

    async def stalled(self) -> dict[str, list[TopicPartition]]:
        """Each group's name -> its stalled partitions (none: it keeps up)."""
        admin, consumer = await self._clients()
        now = time.monotonic()
        answer = {}
        for watch in self.groups:
            partitions = await topic_partitions(consumer, watch.topics)
            committed = await committed_offsets(admin, watch.group, partitions)
            ends = await consumer.end_offsets(partitions)
            answer[watch.name] = watch.stalled(committed, ends, now, self.stall_seconds)
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
