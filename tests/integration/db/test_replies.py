"""The reply path against a real PostgreSQL: a waiter wakes when the projecting
transaction commits, reads once per wake-up, and survives losing its connection."""

import asyncio
import time

import pytest

from proffer_stream.db.replies import (
    PAYLOAD_BYTES,
    ReplyListener,
    command_key,
    decision_key,
    notify,
    offer_key,
    payloads,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def listener(settings):
    replies = ReplyListener(settings.database_url)
    await replies.start()
    yield replies
    await replies.stop()


@pytest.fixture
async def outcomes(db):
    await db.execute("CREATE TABLE outcome (key text PRIMARY KEY, value text)")
    return db


def reader(db, key):
    """A ``find`` that reads the outcome row, counting its reads."""
    reads = []

    async def find():
        reads.append(time.monotonic())
        return await db.fetchval("SELECT value FROM outcome WHERE key = $1", key)

    return find, reads


async def project(db, key, value, *, commit=True):
    """Write the outcome and notify its key in one transaction, as the sink does."""
    async with db.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        await conn.execute("INSERT INTO outcome VALUES ($1, $2)", key, value)
        await notify(conn, ["unrelated", key])
        await (transaction.commit() if commit else transaction.rollback())


async def test_a_waiter_wakes_when_the_outcome_commits_and_reads_it_once(listener, outcomes):
    key = command_key("cmd-1")
    find, reads = reader(outcomes, key)
    waiting = asyncio.create_task(listener.wait_for(key, find, time.monotonic() + 10))
    await asyncio.sleep(0.3)
    assert not waiting.done() and len(reads) == 1  # read once before waiting, then no polls
    written_at = time.monotonic()
    await project(outcomes, key, "applied")
    assert await waiting == "applied"
    assert len(reads) == 2 and reads[1] >= written_at  # woken once, by the commit


async def test_a_rolled_back_outcome_wakes_nobody_and_the_wait_runs_out(listener, outcomes):
    key = decision_key("req-1")
    find, reads = reader(outcomes, key)
    waiting = asyncio.create_task(listener.wait_for(key, find, time.monotonic() + 0.8))
    await asyncio.sleep(0.1)
    await project(outcomes, key, "offer", commit=False)
    assert await waiting is None
    assert len(reads) == 2  # before waiting, and once more at the deadline


async def test_an_outcome_already_there_is_answered_without_waiting(listener, outcomes):
    key = offer_key(42)
    await project(outcomes, key, "v2")
    find, reads = reader(outcomes, key)
    assert await listener.wait_for(key, find, time.monotonic() + 10) == "v2"
    assert len(reads) == 1


async def test_many_waiters_each_wake_for_their_own_key(listener, outcomes):
    keys = [command_key(f"many-{n}") for n in range(200)]
    finders = [reader(outcomes, key) for key in keys]
    deadline = time.monotonic() + 10
    waiting = [
        asyncio.create_task(listener.wait_for(key, find, deadline))
        for key, (find, _) in zip(keys, finders, strict=True)
    ]
    await asyncio.sleep(0.2)
    async with outcomes.acquire() as conn, conn.transaction():
        await conn.executemany("INSERT INTO outcome VALUES ($1, 'done')", [(k,) for k in keys])
        await notify(conn, keys)
    assert await asyncio.gather(*waiting) == ["done"] * len(keys)
    assert all(len(reads) == 2 for _, reads in finders)


async def test_the_listener_listens_again_after_losing_its_connection(listener, outcomes):
    key = command_key("after-loss")
    find, _ = reader(outcomes, key)
    waiting = asyncio.create_task(listener.wait_for(key, find, time.monotonic() + 15))
    await asyncio.sleep(0.1)
    await outcomes.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()"
    )
    await outcomes.execute("INSERT INTO outcome VALUES ($1, 'while nobody listened')", key)
    assert await waiting == "while nobody listened"  # re-read once listening again
    assert listener.listening
    await project(outcomes, command_key("next"), "x")  # and notifications arrive again
    find, _ = reader(outcomes, command_key("next"))
    assert await listener.wait_for(command_key("next"), find, time.monotonic() + 1) == "x"


def test_payloads_stay_under_postgresql_limit_and_keep_every_key():
    keys = [command_key(f"{n:040d}") for n in range(1000)]
    chunks = payloads(keys)
    assert len(chunks) > 1
    assert all(len(chunk.encode()) <= PAYLOAD_BYTES for chunk in chunks)
    assert [key for chunk in chunks for key in chunk.split("\n")] == keys
    assert payloads([]) == []


async def test_an_outcome_that_travels_with_its_key_is_taken_without_a_read(listener, db):
    key = command_key("cmd-carried")
    reads = []

    async def find():
        reads.append(1)
        return None

    def take(outcome):
        return outcome if outcome.startswith('{"tenant_id":"acme"') else None

    with listener.expect(key) as reply:
        async with db.acquire() as conn, conn.transaction():
            await notify(conn, [(key, '{"tenant_id":"other"}'), (key, '{"tenant_id":"acme"}')])
        found = await reply.read(find, time.monotonic() + 5, look_first=False, take=take)
    assert found == '{"tenant_id":"acme"}'
    assert reads == []  # another tenant's outcome was passed over, and nothing was read


def test_an_outcome_too_large_to_travel_leaves_its_key_alone():
    key = command_key("big")
    [small, large] = (
        payloads([(key, '{"a":1}'), (key, '{"a":"' + "é" * 3000 + '"}')]).pop().split("\n")
    )
    assert small == f'{key}\t{{"a":1}}' and large == key
