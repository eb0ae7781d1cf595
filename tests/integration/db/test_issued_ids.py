"""Issued ids: requests recording at once share a statement, and each waits for its own;
old ones are forgotten."""

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from proffer_stream.db.issued import forget_issued_before, record_issued, was_issued

pytestmark = pytest.mark.integration


async def test_concurrent_records_are_all_committed_before_they_return(db):
    async def record(n):
        await record_issued(db, "acme", "catalog_command", [f"cmd-{n}"])
        return await was_issued(db, "acme", "catalog_command", f"cmd-{n}")

    found = await asyncio.gather(*(record(n) for n in range(50)))
    assert all(found)
    assert await db.fetchval("SELECT count(*) FROM issued_commands") == 50


async def test_a_failed_insert_fails_every_request_that_shared_it(db):
    results = await asyncio.gather(
        *(record_issued(db, "acme", "no-such-kind", [f"bad-{n}"]) for n in range(5)),  # type: ignore[arg-type]
        return_exceptions=True,
    )
    assert all(isinstance(r, asyncpg.CheckViolationError) for r in results)
    await record_issued(db, "acme", "request", ["after"])  # the next batch goes on
    assert await was_issued(db, "acme", "request", "after")


async def test_ids_issued_before_a_time_are_forgotten_in_batches(db):
    await record_issued(db, "acme", "request", [f"old-{n}" for n in range(25)])
    await db.execute("UPDATE issued_commands SET issued_at = now() - interval '8 days'")
    await record_issued(db, "acme", "request", ["new"])
    cut = datetime.now(UTC) - timedelta(days=7)
    assert await forget_issued_before(db, cut, batch_size=10) == 25
    assert not await was_issued(db, "acme", "request", "old-0")
    assert await was_issued(db, "acme", "request", "new")
    assert await forget_issued_before(db, cut) == 0
