"""Chaos for the tenant config agent: kill -9 of the worker while config changes are
being decided.

Every accepted command (one on ``proffer.tenant-config-commands``) is decided exactly
once: each tenant's chain of changes ends at the version its length says, each version
was decided once (every copy on the topic the same), every chained command is applied,
every stale one rejected, and PostgreSQL holds the last version of each.
"""

import asyncio
from datetime import UTC, datetime

import pytest
from support import messages_on_topic, produce_paced, wait_for

from proffer_stream.kafka.topics import topics_for
from proffer_stream.offers.config import ConfigCommand, config_key
from proffer_stream.offers.policy import Policy

pytestmark = pytest.mark.chaos

TENANTS = 100
STEPS = 5


def command(tenant: int, step: int, base_version: int) -> tuple[bytes, bytes]:
    """Tenant ``t<tenant>``'s ``step``-th policy change, made against ``base_version``."""
    message = ConfigCommand(
        command_id=f"t{tenant}-s{step}-b{base_version}",
        tenant_id=f"t{tenant}",
        kind="policy",
        base_version=base_version,
        policy=Policy(max_discount_percent=step + 1),
        issued_at=datetime.now(UTC),
    )
    return config_key(message.tenant_id, "policy"), message.model_dump_json().encode()


async def outcomes(db):
    row = await db.fetchrow(
        "SELECT count(*) FILTER (WHERE outcome->>'outcome' = 'applied') AS applied,"
        " count(*) FILTER (WHERE outcome->>'outcome' = 'rejected') AS rejected"
        " FROM config_commands"
    )
    return dict(row)


async def test_kill_9_while_config_changes_are_decided_loses_none_and_decides_none_twice(
    settings, db, processes
):
    processes.start_pipeline(settings)
    topic = topics_for(settings).tenant_config_commands.name
    await produce_paced(settings, topic, [command(-1, 0, base_version=0)], per_second=1)
    await wait_for(lambda: outcomes(db), lambda c: c["applied"] == 1, what="the worker up")
    # Step by step across tenants, so that every tenant's chain is under way at the kill;
    # after each tenant's step 2, a change made against version 1 again: stale.
    records = []
    for step in range(STEPS):
        for tenant in range(TENANTS):
            records.append(command(tenant, step, base_version=step))
            if step == 2:
                records.append(command(tenant, 99, base_version=1))
    producing = asyncio.create_task(produce_paced(settings, topic, records, per_second=200))
    await wait_for(lambda: outcomes(db), lambda c: c["applied"] >= 150, what="progress")
    assert not producing.done()  # the restarted worker decides the rest
    processes.kill("worker")
    await asyncio.sleep(1)
    processes.start("worker", settings)
    await producing

    expected = {"applied": TENANTS * STEPS + 1, "rejected": TENANTS}
    await wait_for(lambda: outcomes(db), lambda c: c == expected, timeout=120, what="all decided")
    versions = await db.fetch("SELECT tenant_id, version FROM tenant_config WHERE kind = 'policy'")
    versions = [r for r in versions if r["tenant_id"] != "t-1"]
    assert {r["version"] for r in versions} == {STEPS} and len(versions) == TENANTS

    copies: dict[tuple[str, int], set[str]] = {}
    for change in await messages_on_topic(settings, topics_for(settings).tenant_config.name):
        if change["tenant_id"] == "t-1":
            continue
        key = (change["tenant_id"], change["version"])
        copies.setdefault(key, set()).add(change["command_id"] + change["changed_at"])
    assert len(copies) == TENANTS * STEPS  # every version of every tenant, once
    assert all(len(variants) == 1 for variants in copies.values())
    assert processes.stop("worker") == 0
