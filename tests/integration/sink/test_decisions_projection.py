"""The decisions' projection: each decision and reaction once, a fulfilment ended once
(its first completed or failed), whatever is replayed; another tenant's rows apart; and
the tables rebuilt from ``proffer.decisions`` (``sink --replay``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaProducer

from proffer_stream.core.identity import partition_key
from proffer_stream.db.decisions import (
    apply_decision_records,
    decision_view,
    get_decision,
    get_fulfillment,
)
from proffer_stream.decisions.context import DecisionContext
from proffer_stream.decisions.models import Choice, DecisionMade, DecisionReaction
from proffer_stream.kafka.topics import topics_for
from proffer_stream.sink.replay import decision_tables, replay

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 17, 12, 0, tzinfo=UTC)


def made(decision_id: str, tenant: str = "acme") -> DecisionMade:
    return DecisionMade(
        decision_id=decision_id,
        tenant_id=tenant,
        external_customer_id="ann",
        surface="personalized_offers",
        decided_at=NOW,
        expires_at=NOW + timedelta(minutes=30),
        customer_known=True,
        context=DecisionContext(locale="en"),
        choice=Choice(ref="catalog_7", kind="catalog", id=7),
        candidates=[],
    )


def reaction(n: int, kind: str, **fields) -> DecisionReaction:
    return DecisionReaction(
        reaction_id=f"r{n}",
        decision_id="d1",
        tenant_id="acme",
        external_customer_id="ann",
        reaction=kind,
        at=NOW + timedelta(seconds=n),
        **fields,
    )


async def test_replays_change_nothing_and_a_fulfilment_ends_once(db):
    records = [
        made("d1"),
        made("d1", tenant="other"),
        reaction(1, "viewed"),
        reaction(2, "fulfillment_started", option_id="accept", fulfillment_id="f1"),
        reaction(3, "fulfillment_completed", option_id="accept", fulfillment_id="f1"),
        reaction(4, "fulfillment_failed", option_id="accept", fulfillment_id="f1"),
    ]
    for _ in range(2):
        async with db.acquire() as conn, conn.transaction():
            await apply_decision_records(conn, records)
    counts = await db.fetchrow(
        "SELECT (SELECT count(*) FROM decisions_made) AS decisions,"
        " (SELECT count(*) FROM decision_reactions) AS reactions,"
        " (SELECT count(*) FROM decision_fulfillments) AS fulfillments"
    )
    assert dict(counts) == {"decisions": 2, "reactions": 4, "fulfillments": 1}
    fulfillment = await get_fulfillment(db, "acme", "f1")
    assert fulfillment is not None and fulfillment.status == "completed"
    assert await get_fulfillment(db, "other", "f1") is None
    assert await get_decision(db, "acme", "d1") == made("d1")
    view = await decision_view(db, "acme", "d1")
    assert view is not None
    assert [r["reaction"] for r in view["reactions"]] == [
        "viewed",
        "fulfillment_started",
        "fulfillment_completed",
        "fulfillment_failed",
    ]
    assert view["offer"] is None
    assert (await decision_view(db, "other", "d1"))["reactions"] == []


async def test_the_tables_are_rebuilt_from_the_topic(settings, db):
    records = [made("d1"), reaction(1, "viewed"), reaction(2, "dismissed")]
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    await producer.start()
    try:
        for record in records:
            await producer.send_and_wait(
                topics_for(settings).decisions.name,
                record.model_dump_json().encode(),
                key=partition_key("acme", "ann"),
            )
    finally:
        await producer.stop()
    summary = await replay(settings, decision_tables(settings))
    assert (summary.records_read, summary.skipped) == (3, 0)
    assert summary.after == {
        "decisions_made": 1,
        "decision_reactions": 2,
        "decision_fulfillments": 0,
    }
    view = await decision_view(db, "acme", "d1")
    assert view is not None and [r["reaction"] for r in view["reactions"]] == [
        "viewed",
        "dismissed",
    ]
