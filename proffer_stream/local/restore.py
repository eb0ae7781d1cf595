"""Giving an embedded broker that lost its topics back what PostgreSQL kept of them.

The embedded broker keeps topics in memory only: after it restarts, the compacted
``proffer.tenant-config`` is empty while PostgreSQL still holds every tenant's rules
and policy in force. The topic is the source of truth that workers and the config
agent read, so before any worker starts, an empty topic gets PostgreSQL's changes back.
A topic that holds anything is left as it is (a real Kafka cluster keeps its topics).
"""

from __future__ import annotations

import logging

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from proffer_stream.core.settings import Settings
from proffer_stream.db.pool import connect_pool
from proffer_stream.db.tenant_config import all_changes
from proffer_stream.kafka.lag import log_ends, topic_partitions
from proffer_stream.kafka.topics import topics_for
from proffer_stream.offers.config import config_key

log = logging.getLogger(__name__)


async def restore_tenant_config(settings: Settings) -> int:
    """Publish PostgreSQL's tenant config on an empty topic; return how many changes."""
    topic = topics_for(settings).tenant_config.name
    if not await _is_empty(settings.bootstrap_servers, topic):
        return 0
    pool = await connect_pool(settings.database_url, max_size=1)
    try:
        changes = await all_changes(pool)
    finally:
        await pool.close()
    if not changes:
        return 0
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    await producer.start()
    try:
        for change in changes:
            key = config_key(change.tenant_id, change.kind)
            await producer.send(topic, change.model_dump_json().encode(), key=key)
        await producer.flush()
    finally:
        await producer.stop()
    log.warning(
        "%s was empty: restored %d tenant rule sets and policies from PostgreSQL",
        topic,
        len(changes),
    )
    return len(changes)


async def _is_empty(bootstrap_servers: str, topic: str) -> bool:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = await topic_partitions(consumer, [topic])
        ends = await log_ends(consumer, await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()
    return not any(ends.values())
