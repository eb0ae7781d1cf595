"""How far a consumer group is behind on its topics."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient


async def group_lag(bootstrap_servers: str, group: str, topics: list[str]) -> int:
    """Records on ``topics`` that ``group`` has not committed yet (all partitions)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=None)
    await admin.start()
    await consumer.start()
    try:
        await consumer.topics()  # loads the metadata partitions_for_topic reads
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(consumer.partitions_for_topic(topic) or [])
        ]
        committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
        ends = await consumer.end_offsets(partitions)
        return sum(
            max(ends[tp] - max(committed[tp].offset if tp in committed else 0, 0), 0)
            for tp in partitions
        )
    finally:
        await consumer.stop()
        await admin.close()
