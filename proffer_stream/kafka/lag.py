"""How far a consumer group is behind on its topics."""

from __future__ import annotations

from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient


async def group_lag(bootstrap_servers: str, group: str, topics: list[str]) -> int:
    """Records on ``topics`` that ``group`` has not committed yet (all partitions)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers, group_id=None, enable_auto_commit=False
    )
    await admin.start()
    await consumer.start()
    try:
        partitions = await topic_partitions(consumer, topics)
        committed = await committed_offsets(admin, group, partitions)
        ends = await log_ends(consumer, await consumer.end_offsets(partitions))
        return lag(ends, committed)
    finally:
        await consumer.stop()
        await admin.close()


async def topic_partitions(consumer: AIOKafkaConsumer, topics: list[str]) -> list[TopicPartition]:
    """Every partition of ``topics``, from fresh metadata."""
    await consumer.topics()  # loads the metadata partitions_for_topic reads
    return [
        TopicPartition(topic, p)
        for topic in topics
        for p in sorted(consumer.partitions_for_topic(topic) or [])
    ]


async def committed_offsets(
    admin: AIOKafkaAdminClient, group: str, partitions: list[TopicPartition]
) -> dict[TopicPartition, int]:
    """The offsets ``group`` committed on ``partitions`` (0 where it committed none)."""
    offsets = await admin.list_consumer_group_offsets(group, partitions=partitions)
    return {tp: max(offsets[tp].offset, 0) if tp in offsets else 0 for tp in partitions}


def lag(ends: Mapping[TopicPartition, int], committed: Mapping[TopicPartition, int]) -> int:
    """Records between the committed offsets and the ends of their partitions."""
    return sum(max(end - committed.get(tp, 0), 0) for tp, end in ends.items())


async def log_ends(
    consumer: AIOKafkaConsumer, reported: Mapping[TopicPartition, int]
) -> dict[TopicPartition, int]:
    """Each partition's end offset, checked against the high watermark of a real fetch.

    The local broker (tansu 0.6) answers ListOffsets with the last batch's base offset
    plus one, short of the true end by that batch's size less one; the high watermark
    it returns with fetched data is right. ``consumer`` must have no group and is left
    assigned to the partitions.
    """
    partitions = list(reported)
    consumer.assign(partitions)
    for tp in partitions:
        consumer.seek(tp, max(reported[tp] - 1, 0))
    await consumer.getmany(timeout_ms=500)
    return {tp: max(reported[tp], consumer.highwater(tp) or 0) for tp in partitions}


async def fetched_log_ends(
    bootstrap_servers: str, reported: Mapping[TopicPartition, int]
) -> dict[TopicPartition, int]:
    """:func:`log_ends` with a consumer of its own."""
    if not reported:
        return {}
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        return await log_ends(consumer, reported)
    finally:
        await consumer.stop()


async def log_ends_now(
    bootstrap_servers: str, partitions: list[TopicPartition]
) -> dict[TopicPartition, int]:
    """Each partition's end offset now, checked like :func:`log_ends`."""
    if not partitions:
        return {}
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        return await log_ends(consumer, await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()


async def read_to_highwater(consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> bool:
    """Every partition read up to the high watermark its last fetch reported."""
    for tp in partitions:
        highwater = consumer.highwater(tp)
        if highwater is None or await consumer.position(tp) < highwater:
            return False
    return True
