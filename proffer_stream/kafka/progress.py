"""Whether consumer groups keep up: lag, and progress since the last look."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

from proffer_stream.kafka.lag import committed_offsets, lag, topic_partitions


@dataclass(frozen=True)
class GroupState:
    """Where a consumer group stands: has it members, is every partition it must read
    assigned to one of them, and how far behind is it."""

    state: str
    """Kafka's name for it: Stable, PreparingRebalance, CompletingRebalance, Empty, Dead."""
    members: int
    partitions: int
    unassigned: list[TopicPartition]
    lag: int

    def serving(self, members: int = 1) -> bool:
        """At least ``members`` members share every partition, settled, and nothing is left
        to consume: a record put on its topics now is the next it reads."""
        return (
            self.state == "Stable"
            and self.members >= members
            and not self.unassigned
            and self.lag == 0
        )

    def describe(self) -> str:
        """What it is doing, for a progress line."""
        if self.state != "Stable" or not self.members:
            return f"joining its group ({self.state.lower() or 'unknown'}, {self.members} members)"
        if self.unassigned:
            return (
                f"{self.partitions - len(self.unassigned)} of {self.partitions} partitions assigned"
            )
        if self.lag:
            return f"{self.lag} records to go"
        return f"serving ({self.members} members, {self.partitions} partitions)"


async def group_state(
    admin: AIOKafkaAdminClient, consumer: AIOKafkaConsumer, group: str, topics: list[str]
) -> GroupState:
    """The group's state, members and assignment (what the coordinator says) and its lag
    on ``topics`` (committed offsets against reported ends). ``consumer`` has no group."""
    partitions = await topic_partitions(consumer, topics)
    [response] = await admin.describe_consumer_groups([group])
    state, members = "", 0
    assigned: set[TopicPartition] = set()
    for described in response.to_object()["groups"]:
        if described["group"] != group:
            continue
        state = described["state"]
        for member in described["members"]:
            members += 1
            if member["member_assignment"]:
                assignment = ConsumerProtocolMemberAssignment.decode(member["member_assignment"])
                assigned.update(
                    TopicPartition(topic, p) for topic, ps in assignment.assignment for p in ps
                )
    committed = await committed_offsets(admin, group, partitions)
    ends = await consumer.end_offsets(partitions)
    unassigned = [tp for tp in partitions if tp not in assigned]
    if state == "Stable" and members and not assigned:
        # The local broker (tansu 0.6) answers DescribeGroups with empty member
        # assignments: a settled group with members is all it can tell.
        unassigned = []
    return GroupState(
        state=state,
        members=members,
        partitions=len(partitions),
        unassigned=unassigned,
        lag=lag(ends, committed),
    )


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
    ``stall_seconds``, and which have not started serving yet.

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
        self._served: set[str] = set()

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

    async def starting(self) -> dict[str, GroupState]:
        """The groups not yet seen serving (:meth:`GroupState.serving`) since this watch
        began, with their state: a process that has just started (or restarted) has not
        joined its group, or has not caught up. A group seen serving once is judged by
        :meth:`stalled` from then on, so that a backlog under load is not taken for a
        start."""
        admin, consumer = await self._clients()
        answer = {}
        for watch in self.groups:
            if watch.name in self._served:
                continue
            state = await group_state(admin, consumer, watch.group, watch.topics)
            if state.serving():
                self._served.add(watch.name)
            else:
                answer[watch.name] = state
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
