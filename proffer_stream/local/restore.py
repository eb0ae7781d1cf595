"""Giving an embedded broker that lost its topics back what PostgreSQL kept of them.

The embedded broker keeps topics in memory only: after it restarts, the compacted
``proffer.tenant-config`` and ``proffer.catalog`` are empty while PostgreSQL still holds
every tenant's rules and policy in force and every catalog offer and collection at its
latest version. These topics are the source of truth that workers, the owners and the
gateways read, so before any worker starts, an empty one gets PostgreSQL's rows back.
A topic that holds anything is left as it is (a real Kafka cluster keeps its topics).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from proffer_stream.catalog.models import definition_key
from proffer_stream.catalog.store import target_of
from proffer_stream.core.settings import Settings
from proffer_stream.db.catalog import all_definitions
from proffer_stream.db.pool import connect_pool
from proffer_stream.db.tenant_config import all_changes
from proffer_stream.kafka.lag import log_ends, topic_partitions
from proffer_stream.kafka.topics import topics_for
from proffer_stream.offers.config import config_key

log = logging.getLogger(__name__)


async def restore_tenant_config(settings: Settings) -> int:
    """Publish PostgreSQL's tenant config on an empty topic; return how many changes."""
    topic = topics_for(settings).tenant_config.name

    async def records(pool: asyncpg.Pool) -> list[tuple[bytes, bytes]]:
        return [
            (config_key(c.tenant_id, c.kind), c.model_dump_json().encode())
            for c in await all_changes(pool)
        ]

    restored = await _restore(settings, topic, records)
    if restored:
        log.warning(
            "%s was empty: restored %d tenant rule sets and policies from PostgreSQL",
            topic,
            restored,
        )
    return restored


async def restore_catalog(settings: Settings) -> int:
    """Publish PostgreSQL's catalog offers, collections and integrations (their latest
    versions) on an empty ``proffer.catalog``; return how many definitions."""
    topic = topics_for(settings).catalog.name

    async def records(pool: asyncpg.Pool) -> list[tuple[bytes, bytes]]:
        return [
            (
                definition_key(d.tenant_id, target_of(d), d.id),
                d.model_dump_json().encode(),
            )
            for d in await all_definitions(pool)
        ]

    restored = await _restore(settings, topic, records)
    if restored:
        log.warning(
            "%s was empty: restored %d catalog definitions from PostgreSQL",
            topic,
            restored,
        )
    return restored


async def _restore(
    settings: Settings,
    topic: str,
    read: Callable[[asyncpg.Pool], Awaitable[Sequence[tuple[bytes, bytes]]]],
) -> int:
    """Publish what ``read`` gives (keys and values) on ``topic`` if it is empty."""
    if not await _is_empty(settings.bootstrap_servers, topic):
        return 0
    pool = await connect_pool(settings.database_url, max_size=1)
    try:
        records = await read(pool)
    finally:
        await pool.close()
    if not records:
        return 0
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    await producer.start()
    try:
        for key, value in records:
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()
    return len(records)


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
