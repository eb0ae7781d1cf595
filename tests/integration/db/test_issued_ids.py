"""Issued ids: requests recording at once share a statement, and each waits for its own."""

import asyncio

import asyncpg
import pytest

from proffer_stream.db.issued import record_issued, was_issued

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
