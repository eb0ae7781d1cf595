"""The sink's events writes (through a staging table) and customers writes: the cases a
batch can bring that one-row-per-event tests miss (repeats within a batch, a replayed
batch, two writes in one transaction, a rolled back one, snapshots in and across batches)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

import asyncpg
import pytest
from aiokafka import ConsumerRecord

from proffer_stream.core.identity import customer_id, partition_key
from proffer_stream.db import customers, events, keys
from proffer_stream.ingest.models import NormalizedEvent
from proffer_stream.ingest.records import RecordLimits
from proffer_stream.signals.fold import new_signals
from proffer_stream.signals.models import CustomerSignals
from proffer_stream.sink.projections import CustomersProjection, EventsProjection

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 17, 12, 0, tzinfo=UTC)
LIMITS = RecordLimits(max_bytes=1_048_576, max_events=1000)


@pytest.fixture(autouse=True)
async def acme(db: asyncpg.Pool) -> None:
    """The tenant the events are of exists: events of a tenant without a key are not stored."""
    await keys.create_key(db, "acme", "test")


def _row(external: str, event_id: str, n: int = 0) -> events.StagedEvent:
    return events.staged_event(
        "acme",
        customer_id("acme", external),
        NormalizedEvent(id=event_id, type="click", data={"n": n}, occurred_at=NOW, received_at=NOW),
    )


def _record(topic: str, offset: int, key: bytes, value: bytes) -> ConsumerRecord:
    return ConsumerRecord(
        topic, 0, offset, 1_700_000_000_000, 0, key, value, None, len(key), len(value), ()
    )


def _events_record(offset: int, external: str, ids: list[str]) -> ConsumerRecord:
    value = {
        "tenant_id": "acme",
        "customer": {"id": external},
        "events": [{"id": i, "type": "click", "data": {"i": i}} for i in ids],
        "received_at": NOW.isoformat(),
    }
    return _record(
        "proffer.events", offset, partition_key("acme", external), json.dumps(value).encode()
    )


def _snapshot_record(offset: int, snapshot: CustomerSignals) -> ConsumerRecord:
    key = partition_key(snapshot.tenant_id, snapshot.external_id)
    return _record("signals-changelog", offset, key, snapshot.model_dump_json().encode())


async def test_a_batch_with_repeats_inserts_each_event_once(db: asyncpg.Pool) -> None:
    batch = [_row("u1", "e1"), _row("u1", "e2"), _row("u1", "e1", 9), _row("u2", "e1")]
    async with db.acquire() as conn, conn.transaction():
        assert await events.insert_events(conn, batch) == 3
    rows = await db.fetch("SELECT customer_id, id, data FROM events ORDER BY customer_id, id")
    assert len(rows) == 3
    assert {(r["customer_id"], r["id"]) for r in rows} == {
        (customer_id("acme", "u1"), "e1"),
        (customer_id("acme", "u1"), "e2"),
        (customer_id("acme", "u2"), "e1"),
    }


async def test_a_replayed_batch_changes_nothing(db: asyncpg.Pool) -> None:
    batch = [_row("u1", f"e{i}", i) for i in range(5)]
    async with db.acquire() as conn:
        async with conn.transaction():
            assert await events.insert_events(conn, batch) == 5
        before = await conn.fetch("SELECT id, data, stored_at FROM events ORDER BY id")
        async with conn.transaction():
            assert await events.insert_events(conn, batch) == 0
        after = await conn.fetch("SELECT id, data, stored_at FROM events ORDER BY id")
    assert before == after


async def test_two_writes_in_one_transaction_stage_only_their_own_rows(
    db: asyncpg.Pool,
) -> None:
    async with db.acquire() as conn, conn.transaction():
        assert await events.insert_events(conn, [_row("u1", "e1"), _row("u1", "e2")]) == 2
        assert await events.insert_events(conn, [_row("u1", "e2"), _row("u1", "e3")]) == 1
        assert await conn.fetchval(f"SELECT count(*) FROM {events.EVENTS_STAGING}") == 2
        before = await conn.fetchval("SELECT now()")
    assert await db.fetchval("SELECT count(*) FROM events") == 3
    stored = await db.fetchval("SELECT min(stored_at) FROM events")
    assert stored >= before  # clock_timestamp() at the insert, not a staged value


async def test_a_rolled_back_write_leaves_the_connection_usable(db: asyncpg.Pool) -> None:
    async with db.acquire() as conn:
        with pytest.raises(RuntimeError):
            async with conn.transaction():  # the first use: it creates the staging table
                await events.insert_events(conn, [_row("u1", "e1")])
                raise RuntimeError("crash before commit")
        assert await events.insert_events(conn, [_row("u1", "e1"), _row("u1", "e2")]) == 2
        assert await conn.fetchval(f"SELECT count(*) FROM {events.EVENTS_STAGING}") == 0


async def test_the_events_projection_skips_bad_records_and_repeats(db: asyncpg.Pool) -> None:
    projection = EventsProjection("proffer.events", LIMITS)
    bad = _record("proffer.events", 3, b"acme:u1", b"{not json")
    wrong_key = dataclasses.replace(_events_record(4, "u3", ["z"]), key=b"acme:someone-else")
    records = [
        _events_record(1, "u1", ["a", "b"]),
        _events_record(2, "u1", ["b", "c"]),  # a re-sent event: stored once
        bad,
        wrong_key,
    ]
    async with db.acquire() as conn:
        async with conn.transaction():
            assert await projection.write(conn, projection.read(records)) == 3
        async with conn.transaction():
            assert await projection.write(conn, projection.read(records)) == 0
    assert await db.fetchval("SELECT count(*) FROM events") == 3


async def test_the_events_of_a_tenant_that_does_not_exist_are_not_stored(
    db: asyncpg.Pool,
) -> None:
    ghost = events.staged_event(
        "ghost",
        customer_id("ghost", "u1"),
        NormalizedEvent(id="g1", type="click", data={}, occurred_at=NOW, received_at=NOW),
    )
    async with db.acquire() as conn:
        assert await events.insert_events(conn, [ghost, _row("u1", "e1")]) == 1
    assert await db.fetchval("SELECT tenant_id FROM events") == "acme"


async def test_customers_the_last_snapshot_of_a_batch_and_of_batches_wins(
    db: asyncpg.Pool,
) -> None:
    projection = CustomersProjection("signals-changelog")
    first = new_signals("acme", "u1")
    first.event_count = 5
    older = first.model_copy(update={"event_count": 1, "source_offset": 1})
    newer = first.model_copy(update={"event_count": 2, "source_offset": 2, "email": "a@x.io"})
    other = new_signals("acme", "u2")
    async with db.acquire() as conn:
        async with conn.transaction():
            records = [
                _snapshot_record(0, older),
                _snapshot_record(1, other),
                _snapshot_record(2, newer),
            ]
            written = await projection.write(conn, projection.read(records))
        assert written == 2
        row = await customers.get_customer_by_external_id(db, "acme", "u1")
        assert row is not None and (row.event_count, row.email) == (2, "a@x.io")
        # The changelog is the order of truth: a later record wins whatever it holds.
        async with conn.transaction():
            assert await projection.write(conn, projection.read([_snapshot_record(3, older)])) == 1
        row = await customers.get_customer_by_external_id(db, "acme", "u1")
        assert row is not None and (row.event_count, row.email) == (1, None)
        # A replayed batch ends in the same rows.
        async with conn.transaction():
            assert await projection.write(conn, projection.read([_snapshot_record(3, older)])) == 1
        stored = await conn.fetchrow(
            "SELECT event_count, signals, updated_at FROM customers WHERE external_id = 'u1'"
        )
    assert stored["event_count"] == 1
    assert CustomerSignals.model_validate_json(stored["signals"]) == older
    assert await db.fetchval("SELECT count(*) FROM customers") == 2


async def test_customers_without_updated_at_get_the_transaction_time(db: asyncpg.Pool) -> None:
    snapshot = new_signals("acme", "u1")
    assert snapshot.updated_at is None
    async with db.acquire() as conn:
        async with conn.transaction():
            assert (
                await customers.upsert_customers(conn, [snapshot], [snapshot.model_dump_json()])
                == 1
            )
            now = await conn.fetchval("SELECT now()")
        assert await conn.fetchval("SELECT updated_at FROM customers") == now
        # Outside a transaction too: another external id with the same internal id (a
        # hash collision) keeps the first customer.
        collision = snapshot.model_copy(update={"external_id": "u2"})
        assert (
            await customers.upsert_customers(conn, [collision], [collision.model_dump_json()]) == 0
        )
