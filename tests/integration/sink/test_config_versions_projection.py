"""Every version of a tenant's rules and policy, projected by the sink from
``proffer.tenant-config`` into ``tenant_config_versions``: each version once (a record
read twice, or an older one after a newer, changes nothing), and the topic read again,
onto the rows or into empty tables, gives the same rows."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from support import wait_for

from proffer_stream.core.settings import Settings
from proffer_stream.db.tenant_config import config_versions, latest_change
from proffer_stream.kafka.lag import group_lag
from proffer_stream.kafka.topics import topics_for
from proffer_stream.offers.config import ConfigChange, config_key
from proffer_stream.offers.policy import Policy
from proffer_stream.offers.rules import DEFAULT_RULES, RuleSet
from proffer_stream.sink.consumer import Sink

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 17, 12, 0, tzinfo=UTC)


def rules_change(tenant: str, version: int, rule_count: int) -> ConfigChange:
    rules = RuleSet(version=version, rules=DEFAULT_RULES.rules[:rule_count])
    return ConfigChange(
        tenant_id=tenant,
        kind="rules",
        version=version,
        rules=rules,
        changed_at=NOW + timedelta(minutes=version),
        changed_by="ops",
        command_id=f"{tenant}-rules-{version}",
    )


def policy_change(tenant: str, version: int, cap: int) -> ConfigChange:
    return ConfigChange(
        tenant_id=tenant,
        kind="policy",
        version=version,
        policy=Policy(max_discount_percent=cap),
        changed_at=NOW + timedelta(minutes=version),
        command_id=f"{tenant}-policy-{version}",
    )


CHANGES = [
    rules_change("acme", 1, 1),
    policy_change("acme", 1, 20),
    rules_change("acme", 2, 2),
    rules_change("acme", 2, 2),  # the same record again (a producer's retry)
    rules_change("acme", 3, 3),
    rules_change("acme", 1, 1),  # an older version after a newer (a replayed command)
    policy_change("acme", 2, 10),
    rules_change("globex", 1, 4),
]
VERSIONS = 6  # acme rules 1-3, acme policy 1-2, globex rules 1


async def produce(settings: Settings, changes: list[ConfigChange]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    await producer.start()
    try:
        topic = topics_for(settings).tenant_config.name
        for change in changes:
            key = config_key(change.tenant_id, change.kind)
            await producer.send_and_wait(topic, change.model_dump_json().encode(), key=key)
    finally:
        await producer.stop()


@asynccontextmanager
async def sink_in_group(settings: Settings, group: str) -> AsyncIterator[Sink]:
    """A sink in a consumer group of its own: it reads every topic from the start."""
    sink = Sink(settings.model_copy(update={"sink_group": f"{settings.topic_prefix}{group}"}))
    task = asyncio.create_task(sink.run())
    try:
        yield sink
    finally:
        sink.stop()
        await task


async def rows(db: asyncpg.Pool) -> list[tuple[object, ...]]:
    versions = await db.fetch(
        "SELECT tenant_id, kind, version, change::text, changed_at FROM tenant_config_versions"
        " ORDER BY tenant_id, kind, version"
    )
    current = await db.fetch(
        "SELECT tenant_id, kind, version, change::text, changed_at FROM tenant_config"
        " ORDER BY tenant_id, kind"
    )
    return [tuple(r) for r in versions] + [("current", *r) for r in current]


async def read_to_the_end(settings: Settings, group: str) -> list[tuple[object, ...]]:
    """Wait until the sink of ``group`` has committed every record of the topic."""
    topic = topics_for(settings).tenant_config.name
    await wait_for(
        lambda: group_lag(settings.bootstrap_servers, f"{settings.topic_prefix}{group}", [topic]),
        lambda behind: behind == 0,
        what=f"the sink of group {group} at the topic's end",
    )


async def test_versions_are_projected_once_and_a_replay_gives_the_same_rows(
    settings: Settings, db: asyncpg.Pool
) -> None:
    await produce(settings, CHANGES)
    async with sink_in_group(settings, "first"):
        await read_to_the_end(settings, "first")
    first = await rows(db)
    assert len(first) == VERSIONS + 3

    # Each version once, with what it said; the one in force is the newest.
    acme_rules = await config_versions(db, "acme", "rules")
    assert [c.version for c in acme_rules] == [3, 2, 1]
    assert [len(c.rules.rules) for c in acme_rules if c.rules] == [3, 2, 1]
    assert [c.version for c in await config_versions(db, "acme", "policy")] == [2, 1]
    assert [c.version for c in await config_versions(db, "globex", "policy")] == []
    # Older than a version, at most so many: the dashboard's pages.
    assert [c.version for c in await config_versions(db, "acme", "rules", before=3, limit=1)] == [2]
    in_force = await latest_change(db, "acme", "rules")
    assert in_force is not None and in_force.version == 3

    # The topic read again onto the rows (a sink that lost its offsets): nothing changes.
    async with sink_in_group(settings, "second"):
        await read_to_the_end(settings, "second")
    again = await rows(db)
    assert again == first

    # Dropped and replayed: the same rows.
    await db.execute("DELETE FROM tenant_config_versions")
    await db.execute("DELETE FROM tenant_config")
    async with sink_in_group(settings, "third"):
        await read_to_the_end(settings, "third")
    replayed = await rows(db)
    assert replayed == first
