"""``sink --replay``: replaying proffer.offers rebuilds the same rows, beside a running
sink or into empty tables, and never swaps in less than the tables held unless told to."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from support import produce_paced, wait_for

from proffer_stream.core.identity import customer_id, partition_key
from proffer_stream.core.settings import Settings
from proffer_stream.kafka.topics import topics_for
from proffer_stream.offers.models import (
    DecisionTrace,
    Offer,
    OfferDraft,
    OfferEvent,
    OfferEventType,
    OfferStatus,
    OfferTerms,
    Redemption,
    Verdict,
    WriterTrace,
)
from proffer_stream.sink.consumer import Sink
from proffer_stream.sink.replay import (
    STAGING_SCHEMA,
    ReplayError,
    ReplayRefused,
    replay_offers,
    run_replay,
)

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 17, 12, 0, tzinfo=UTC)
KEYS = {
    "offers": "tenant_id, id",
    "offer_events": "tenant_id, event_id",
    "decisions": "tenant_id, request_id",
}


def _offer(tenant: str, external: str, id_: int, request_id: str) -> Offer:
    return Offer(
        id=id_,
        customer_id=customer_id(tenant, external),
        external_customer_id=external,
        tenant_id=tenant,
        headline="10% off your next order",
        body_copy="Come back and save.",
        offer_type="discount",
        offer_terms=OfferTerms(discount_percent=10, code=f"SAVE{id_}", valid_days=7),
        channel="email",
        ai_reasoning="cart abandoned twice this week",
        expires_at=NOW + timedelta(days=7),
        generated_at=NOW,
        request_id=request_id,
        rule_id="cart-abandoners",
        rule_version=1,
        writer="built-in",
    )


def _trace(request_id: str, *, suppressed: list[str] | None = None) -> DecisionTrace:
    draft = None
    if not suppressed:
        draft = OfferDraft(
            headline="10% off your next order",
            body_copy="Come back and save.",
            offer_type="discount",
            offer_terms=OfferTerms(discount_percent=10),
            channel="email",
            reasoning="cart abandoned twice this week",
        )
    return DecisionTrace(
        request_id=request_id,
        source="rule",
        rule_id="cart-abandoners",
        rule_version=1,
        writer=WriterTrace(kind="built-in"),
        draft=draft,
        verdicts=[Verdict(check="discount_cap", outcome="passed")],
        suppressed=suppressed or [],
    )


def _moved(offer: Offer, status: OfferStatus, at: datetime, **changes: Any) -> Offer:
    return offer.model_copy(
        update={"status": status, "version": offer.version + 1, f"{status}_at": at, **changes}
    )


def _event(
    event_id: str,
    event_type: OfferEventType,
    offer: Offer,
    at: datetime,
    *,
    previous: OfferStatus | None = None,
    **fields: Any,
) -> OfferEvent:
    return OfferEvent(
        event_id=event_id,
        event_type=event_type,
        tenant_id=offer.tenant_id,
        customer_id=offer.customer_id,
        external_customer_id=offer.external_customer_id,
        offer_id=offer.id,
        previous_status=previous,
        status=offer.status,
        version=offer.version,
        occurred_at=at,
        cause=fields.pop("cause", "api-key ci"),
        offer=offer,
        **fields,
    )


def offer_records() -> list[tuple[bytes, bytes]]:
    """(key, value) records of proffer.offers, as the offers agent would write them:
    a full lifecycle, a rejected redemption, a suppressed decision, a re-delivered older
    event, another tenant, and one record that does not parse."""
    t = [NOW + timedelta(minutes=m) for m in range(10)]
    generated = _offer("acme", "u1", 101, "req-1")
    approved = _moved(generated, "approved", t[1])
    sent = _moved(approved, "sent", t[2])
    redeemed = _moved(
        sent, "redeemed", t[4], redemption=Redemption(cause="evt-buy-1", amount=Decimal("42.50"))
    )
    other = _offer("acme", "u3", 103, "req-3")
    elsewhere = _offer("globex", "u1", 201, "req-4")
    events = [
        _event(
            "e1",
            "offer.generated",
            generated,
            t[0],
            request_id="req-1",
            cause="rule cart-abandoners",
            trace=_trace("req-1"),
        ),
        _event("e2", "offer.approved", approved, t[1], previous="generated", command_id="c2"),
        _event("e3", "offer.sent", sent, t[2], previous="approved", command_id="c3"),
        _event(
            "e4",
            "offer.redemption_rejected",
            sent,
            t[3],
            previous="sent",
            command_id="c4",
            reason="the code does not match",
            cause="evt-buy-0",
        ),
        _event(
            "e5",
            "offer.redeemed",
            redeemed,
            t[4],
            previous="sent",
            command_id="c5",
            cause="evt-buy-1",
        ),
        OfferEvent(
            event_id="e6",
            event_type="offer.suppressed",
            tenant_id="acme",
            customer_id=customer_id("acme", "u2"),
            external_customer_id="u2",
            request_id="req-2",
            occurred_at=t[5],
            cause="rule cart-abandoners",
            trace=_trace("req-2", suppressed=["cooldown: an offer 2h ago"]),
        ),
        _event(
            "e7",
            "offer.generated",
            other,
            t[6],
            request_id="req-3",
            cause="rule cart-abandoners",
            trace=_trace("req-3"),
        ),
        _event(
            "e8",
            "offer.approved",
            _moved(other, "approved", t[7]),
            t[7],
            previous="generated",
            command_id="c8",
        ),
        _event(
            "e9",
            "offer.generated",
            elsewhere,
            t[8],
            request_id="req-4",
            cause="rule cart-abandoners",
            trace=_trace("req-4"),
        ),
    ]
    records = [
        (partition_key(e.tenant_id, e.external_customer_id), e.model_dump_json().encode())
        for e in events
    ]
    records.append(records[1])  # e2 (approved, v2) re-delivered after v4
    records.append((partition_key("acme", "u4"), b'{"event_id": "broken'))
    return records


RECORDS = offer_records()
PARSED = len(RECORDS) - 1
EXPECTED_COUNTS = {"offers": 3, "offer_events": 9, "decisions": 4, "versions": 4 + 2 + 1}


async def produce(settings: Settings, records: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topics_for(settings).offers.name, value, key=key)
    finally:
        await producer.stop()


async def counts(db: asyncpg.Pool) -> dict[str, int]:
    row = await db.fetchrow(
        "SELECT (SELECT count(*) FROM offers) AS offers,"
        " (SELECT count(*) FROM offer_events) AS offer_events,"
        " (SELECT count(*) FROM decisions) AS decisions,"
        " (SELECT coalesce(sum(version), 0) FROM offers) AS versions"
    )
    return dict(row)


async def snapshot(db: asyncpg.Pool) -> dict[str, list[dict[str, Any]]]:
    """Every row of the offer tables, all columns, in key order."""
    return {
        table: [dict(r) for r in await db.fetch(f"SELECT * FROM {table} ORDER BY {keys}")]
        for table, keys in KEYS.items()
    }


@asynccontextmanager
async def running_sink(settings: Settings) -> AsyncIterator[Sink]:
    """The normal sink, in a consumer group of the test's own."""
    sink = Sink(settings.model_copy(update={"sink_group": f"{settings.topic_prefix}sink"}))
    task = asyncio.create_task(sink.run())
    try:
        yield sink
    finally:
        sink.stop()
        await task


async def projected(db: asyncpg.Pool) -> None:
    await wait_for(
        lambda: counts(db), lambda c: c == EXPECTED_COUNTS, timeout=60, what="the offer rows"
    )


async def test_replay_beside_the_running_sink_rebuilds_the_same_rows(
    settings: Settings, db: asyncpg.Pool
) -> None:
    await produce(settings, RECORDS)
    await db.execute(
        "INSERT INTO offer_commands VALUES ('acme', 'c9', 101, 'applied', 'redeemed', 4,"
        " NULL, '{}', now())"
    )
    progress: list[str] = []
    async with running_sink(settings):
        await projected(db)
        before = await snapshot(db)
        summary = await replay_offers(settings, report=progress.append)
        after = await snapshot(db)

    assert after == before
    assert (summary.records_read, summary.rows_written, summary.skipped) == (
        len(RECORDS),
        PARSED,
        1,
    )
    assert any("rebuilding offer_events, decisions, offers" in line for line in progress)
    assert any("swapped in the rebuilt tables" in line for line in progress)
    assert summary.before == summary.after == {"offer_events": 9, "decisions": 4, "offers": 3}
    assert await db.fetchval("SELECT count(*) FROM offer_commands") == 1  # not dropped
    offers = {row["id"]: row for row in after["offers"]}
    assert (offers[101]["status"], offers[101]["version"]) == ("redeemed", 4)
    assert offers[101]["redeemed_amount"] == Decimal("42.50")
    assert (offers[103]["status"], offers[201]["status"]) == ("approved", "generated")
    outcomes = {row["request_id"]: row["outcome"] for row in after["decisions"]}
    assert outcomes == {"req-1": "offer", "req-2": "suppressed", "req-3": "offer", "req-4": "offer"}


async def test_replay_into_empty_tables_writes_what_the_sink_would(
    settings: Settings, db: asyncpg.Pool
) -> None:
    await produce(settings, RECORDS)
    summary = await replay_offers(settings)
    assert await counts(db) == EXPECTED_COUNTS
    replayed = await snapshot(db)
    assert summary.records_read == len(RECORDS) and summary.skipped == 1

    await db.execute("TRUNCATE offers, offer_events, decisions")
    async with running_sink(settings):
        await projected(db)
        assert await snapshot(db) == replayed


async def test_replay_of_a_missing_topic_drops_nothing(
    settings: Settings, db: asyncpg.Pool
) -> None:
    await produce(settings, RECORDS[:1])
    async with running_sink(settings):
        await wait_for(lambda: counts(db), lambda c: c["offers"] == 1, what="the first offer")
    elsewhere = settings.model_copy(update={"topic_prefix": f"{settings.topic_prefix}missing."})
    with pytest.raises(ReplayError, match="does not exist"):
        await replay_offers(elsewhere)
    assert (await counts(db))["offers"] == 1


async def test_the_command_prints_a_summary_and_exits_0(
    settings: Settings, db: asyncpg.Pool, capsys: pytest.CaptureFixture[str]
) -> None:
    await produce(settings, RECORDS)
    assert await asyncio.to_thread(run_replay, settings) == 0
    summaries = [line for line in capsys.readouterr().out.splitlines() if "replayed" in line]
    offers, catalog, decisions = summaries  # the offer tables, the catalog's, the decisions'
    assert "proffer.decisions: 0 records read" in decisions
    assert f"{len(RECORDS)} records read, {PARSED} rows written, 1 skipped" in offers
    assert "rows offer_events 0 -> 9, decisions 0 -> 4, offers 0 -> 3" in offers
    assert "proffer.catalog-events: 0 records read" in catalog
    assert await counts(db) == EXPECTED_COUNTS


def restarted(settings: Settings) -> Settings:
    """Settings naming a proffer.offers that holds only what came after a broker restart
    (another topic prefix, the same database)."""
    return settings.model_copy(update={"topic_prefix": f"{settings.topic_prefix}restarted."})


async def staging_schema_exists(db: asyncpg.Pool) -> bool:
    return bool(
        await db.fetchval(
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1",
            STAGING_SCHEMA,
        )
    )


async def test_replay_of_a_topic_that_lost_records_refuses_and_keeps_every_row(
    settings: Settings, db: asyncpg.Pool, capsys: pytest.CaptureFixture[str]
) -> None:
    await produce(settings, RECORDS)
    async with running_sink(settings):
        await projected(db)
    before = await snapshot(db)
    after_restart = restarted(settings)
    await produce(after_restart, RECORDS[8:])  # e9 (another tenant's offer), e2 again, broken

    with pytest.raises(ReplayRefused) as refused:
        await replay_offers(after_restart)
    # 103 is missing; 101 is there at version 2 only (live: 4)
    assert refused.value.missing == {"offer_events": 7, "decisions": 3, "offers": 2}
    assert "lacks rows the tables hold (7 of the 9 offer events, 3 of the 4 decisions," in str(
        refused.value
    )
    assert "--force" in str(refused.value)
    assert await snapshot(db) == before
    assert not await staging_schema_exists(db)

    assert await asyncio.to_thread(run_replay, after_restart) == 1
    assert "proffer-stream: replay refused: " in capsys.readouterr().err
    assert await snapshot(db) == before


async def test_a_forced_replay_keeps_only_what_the_topic_holds_and_says_so(
    settings: Settings, db: asyncpg.Pool
) -> None:
    await produce(settings, RECORDS)
    async with running_sink(settings):
        await projected(db)
    after_restart = restarted(settings)
    await produce(after_restart, RECORDS[8:])

    summary = await replay_offers(after_restart, force=True)

    assert summary.lost == {"offer_events": 7, "decisions": 3, "offers": 2}
    assert summary.before == {"offer_events": 9, "decisions": 4, "offers": 3}
    assert summary.after == {"offer_events": 2, "decisions": 1, "offers": 2}
    assert "forced, dropped what the topic lacked: 7 offer_events, 3 decisions, 2 offers" in (
        summary.line()
    )
    offers = {row["id"]: row["version"] for row in (await snapshot(db))["offers"]}
    assert offers == {101: 2, 201: 1}  # what the topic holds, an older version included


async def test_replay_beside_a_sink_writing_new_offers_loses_none_of_them(
    settings: Settings, db: asyncpg.Pool
) -> None:
    """Offers made during the replay are written by the sink into the live tables; the
    swap reads the topic's tail under the lock, so it neither refuses nor drops them."""
    await produce(settings, RECORDS)
    new = [_offer("acme", f"n{n}", 1000 + n, f"req-n{n}") for n in range(300)]
    later = [
        (
            partition_key("acme", offer.external_customer_id),
            _event(f"n{offer.id}", "offer.generated", offer, NOW, request_id=offer.request_id)
            .model_dump_json()
            .encode(),
        )
        for offer in new
    ]
    async with running_sink(settings):
        await projected(db)
        producing = asyncio.create_task(
            produce_paced(settings, topics_for(settings).offers.name, later, per_second=300)
        )
        await asyncio.sleep(0.3)  # the sink is writing new offers when the replay starts
        summary = await replay_offers(settings)
        await producing
        await wait_for(
            lambda: counts(db),
            lambda c: c["offers"] == 3 + len(new),
            timeout=60,
            what="every new offer",
        )
        rows = await snapshot(db)
    assert summary.records_read > len(RECORDS)  # it read offers made meanwhile
    assert summary.lost == {"offer_events": 0, "decisions": 0, "offers": 0}
    assert summary.after["offers"] >= summary.before["offers"]
    assert len(rows["offer_events"]) == 9 + len(new)

    await db.execute("TRUNCATE offers, offer_events, decisions")
    assert (await replay_offers(settings)).after["offers"] == 3 + len(new)
    assert await snapshot(db) == rows
