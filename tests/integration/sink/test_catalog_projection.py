"""The catalog's projection: definitions at their highest version, each decision once,
counts at each offer's highest seq; what the sink writes, a replay rebuilds, and what
PostgreSQL holds goes back onto an empty ``proffer.catalog``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from support import messages_on_topic, wait_for

from proffer_stream.catalog.limits import MemberState, OfferState, decide_definition, decide_member
from proffer_stream.catalog.models import (
    CatalogDefinition,
    CatalogEvent,
    CatalogOfferFields,
    CollectionDefinition,
    CollectionFields,
    Definition,
    DefinitionCommand,
    IntegrationDefinition,
    MemberAction,
    MemberCommand,
    catalog_key,
    definition_key,
    reserved_as_of,
)
from proffer_stream.core.settings import Settings
from proffer_stream.db.catalog import apply_catalog_definitions, apply_catalog_events
from proffer_stream.db.catalog_reads import member_context
from proffer_stream.db.catalog_state import load_member_state, load_offer_state
from proffer_stream.db.replies import CHANNEL, catalog_definition_key, command_key
from proffer_stream.kafka.topics import topics_for
from proffer_stream.local.restore import restore_catalog
from proffer_stream.sink.consumer import Sink
from proffer_stream.sink.projections import CatalogDefinitionsProjection
from proffer_stream.sink.replay import ReplayError, ReplayRefused, replay_catalog

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 17, 12, 0, tzinfo=UTC)
KEYS = {
    "catalog_offers": "tenant_id, id",
    "catalog_collections": "tenant_id, id",
    "catalog_integrations": "tenant_id, id",
    "catalog_activity": "tenant_id, event_id",
    "catalog_counts": "tenant_id, offer_id",
    "catalog_members": "tenant_id, offer_id, external_customer_id",
}


class Owner:
    """One catalog offer's (or collection's) owner, deciding with the domain's functions:
    the definitions and events it publishes, with their keys."""

    def __init__(self, tenant: str, target: str, id_: int) -> None:
        self.tenant, self.target, self.id = tenant, target, id_
        self.state = OfferState()
        self.members: dict[str, MemberState] = {}
        self.definitions: list[Definition] = []
        self.events: list[CatalogEvent] = []
        self.key = definition_key(tenant, target, id_)
        self.clock = NOW

    def define(self, action: str, **body: Any) -> None:
        current = self.state.definition(self.target)
        command = DefinitionCommand.model_validate(
            {
                "command_id": f"{self.tenant}-{self.target}{self.id}-{len(self.events) + 1}",
                "tenant_id": self.tenant,
                "target": self.target,
                "id": self.id,
                "action": action,
                "base_version": current.version if current else 0,
                self.target: body or None,
                "issued_at": self._tick(),
            }
        )
        self.state, event = decide_definition(self.state, command)
        self.events.append(event)
        defined = self.state.definition(self.target)
        assert defined is not None
        self.definitions.append(defined)

    def member(self, external: str, action: MemberAction, **fields: Any) -> CatalogEvent:
        command = MemberCommand(
            command_id=f"{self.tenant}-{self.id}-{external}-{len(self.events) + 1}",
            tenant_id=self.tenant,
            offer_id=self.id,
            external_customer_id=external,
            action=action,
            issued_at=self._tick(),
            **fields,
        )
        mine = self.members.get(external, MemberState())
        self.state, self.members[external], event = decide_member(self.state, mine, command)
        self.events.append(event)
        return event

    def _tick(self) -> datetime:
        self.clock += timedelta(minutes=1)
        return self.clock


def owners() -> list[Owner]:
    """Offer 1 of acme (two versions, uses up to its stock, refusals, a like), acme's
    collection 1 (the same id as the offer), and globex's offer 1."""
    offer = Owner("acme", "offer", 1)
    fields = CatalogOfferFields(
        status="published", name={"en": "Spring sale"}, stock=2, maximum_uses_per_user=1
    ).model_dump(mode="json")
    offer.define("create", **fields)
    offer.define("update", **{**fields, "name": {"en": "Spring sale", "pl": "Wiosna"}})
    offer.member("u1", "use")
    assert offer.member("u1", "use").reason == "per_user_limit"
    offer.member("u2", "like")
    offer.member("u2", "use")
    assert offer.member("u3", "use").reason == "out_of_stock"
    offer.member("u2", "seen")
    collection = Owner("acme", "collection", 1)
    collection.define("create", **CollectionFields(title={"en": "Spring"}).model_dump(mode="json"))
    collection.define("update", **CollectionFields(offers_order=[1]).model_dump(mode="json"))
    elsewhere = Owner("globex", "offer", 1)
    elsewhere.define("create", **CatalogOfferFields(name={"en": "Other"}).model_dump(mode="json"))
    integration = Owner("acme", "integration", 1)
    integration.define("create", name="Checkout")
    integration.define("update", name="Checkout", placements={"thanks": {"offer_ids": [1]}})
    return [offer, collection, elsewhere, integration]


OWNERS = owners()
DEFINITIONS = [d for o in OWNERS for d in o.definitions]
EVENTS = [e for o in OWNERS for e in o.events]


Records = list[tuple[bytes, bytes | None]]


def definition_records() -> Records:
    """proffer.catalog as the owners write it, with an older version re-delivered last
    and a tombstone."""
    records: Records = [
        (o.key, d.model_dump_json().encode()) for o in OWNERS for d in o.definitions
    ]
    return [*records, records[0], (catalog_key("acme", 99), None)]


def event_records() -> Records:
    """proffer.catalog-events, with an older event re-delivered last."""
    records: Records = [(o.key, e.model_dump_json().encode()) for o in OWNERS for e in o.events]
    return [*records, records[2]]


BAD_DEFINITIONS: Records = [(b"acme\x00nothing\x007", definition_records()[0][1])]
"""A definition under a key of neither an offer nor a collection."""
BAD_EVENTS: Records = [(OWNERS[0].key, b'{"event_id": "broken')]


async def snapshot(db: asyncpg.Pool) -> dict[str, list[dict[str, Any]]]:
    """Every row of the catalog tables, all columns, in key order."""
    return {
        table: [dict(r) for r in await db.fetch(f"SELECT * FROM {table} ORDER BY {keys}")]
        for table, keys in KEYS.items()
    }


async def write(
    db: asyncpg.Pool, definitions: Sequence[Definition], events: Sequence[CatalogEvent]
) -> None:
    async with db.acquire() as conn, conn.transaction():
        await apply_catalog_definitions(conn, definitions)
        await apply_catalog_events(conn, events)


def check_rows(rows: dict[str, list[dict[str, Any]]]) -> None:
    """What the owners' history projects to."""
    offers = {(r["tenant_id"], r["id"]): r for r in rows["catalog_offers"]}
    assert {key: r["version"] for key, r in offers.items()} == {("acme", 1): 2, ("globex", 1): 1}
    acme = CatalogDefinition.model_validate_json(offers[("acme", 1)]["definition"])
    assert acme == OWNERS[0].definitions[-1]
    assert offers[("globex", 1)]["status"] == "draft"
    [collection] = rows["catalog_collections"]
    assert collection["version"] == 2
    assert CollectionDefinition.model_validate_json(collection["definition"]).offers_order == [1]
    assert len(rows["catalog_activity"]) == len(EVENTS)
    targets = {(r["tenant_id"], r["target"], r["offer_id"]) for r in rows["catalog_activity"]}
    assert targets == {
        ("acme", "offer", 1),
        ("acme", "collection", 1),
        ("globex", "offer", 1),
        ("acme", "integration", 1),
    }
    [integration] = rows["catalog_integrations"]
    assert integration["version"] == 2
    defined = IntegrationDefinition.model_validate_json(integration["definition"])
    assert defined.placements["thanks"].offer_ids == [1]
    counts = {(r["tenant_id"], r["offer_id"]): r for r in rows["catalog_counts"]}
    assert set(counts) == {("acme", 1), ("globex", 1)}  # a collection counts nothing
    acme_counts = counts[("acme", 1)]
    assert (acme_counts["seq"], acme_counts["uses_count"], acme_counts["refusals_count"]) == (
        len(OWNERS[0].events),
        2,
        2,
    )
    assert (acme_counts["likes_count"], acme_counts["seen_count"]) == (1, 1)
    members = {r["external_customer_id"]: r for r in rows["catalog_members"]}
    assert {m: (r["uses"], r["liked"]) for m, r in members.items()} == {
        "u1": (1, False),
        "u2": (1, True),
        "u3": (0, False),
    }


async def test_the_same_records_twice_or_out_of_order_give_the_same_rows(
    db: asyncpg.Pool,
) -> None:
    await write(db, DEFINITIONS, EVENTS)
    rows = await snapshot(db)
    check_rows(rows)

    await write(db, DEFINITIONS, EVENTS)  # re-delivered
    assert await snapshot(db) == rows
    await write(db, DEFINITIONS[::-1], EVENTS[::-1])  # older ones after newer, in a batch
    assert await snapshot(db) == rows
    for definition, event in zip(DEFINITIONS[::-1], EVENTS[::-1], strict=False):
        await write(db, [definition], [event])  # older ones in later batches
    assert await snapshot(db) == rows


async def test_counts_and_definitions_keep_the_newest_whatever_comes_first(
    db: asyncpg.Pool,
) -> None:
    offer = OWNERS[0]
    used_twice = next(e for e in offer.events if e.counts.uses_count == 2)
    first_use = next(e for e in offer.events if e.counts.uses_count == 1)
    await write(db, [offer.definitions[1]], [used_twice])
    await write(db, [offer.definitions[0]], [first_use])
    row = await db.fetchrow("SELECT * FROM catalog_counts WHERE tenant_id = 'acme'")
    assert (row["seq"], row["uses_count"]) == (used_twice.seq, 2)
    version = await db.fetchval("SELECT version FROM catalog_offers WHERE tenant_id = 'acme'")
    assert version == 2
    u2 = await db.fetchrow("SELECT * FROM catalog_members WHERE external_customer_id = 'u2'")
    assert (u2["seq"], u2["uses"]) == (used_twice.seq, 1)


async def produce(
    settings: Settings,
    definitions: list[tuple[bytes, bytes | None]],
    events: list[tuple[bytes, bytes | None]],
) -> None:
    topics = topics_for(settings)
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    await producer.start()
    try:
        for topic, records in (
            (topics.catalog.name, definitions),
            (topics.catalog_events.name, events),
        ):
            for key, value in records:
                await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


@asynccontextmanager
async def running_sink(settings: Settings) -> AsyncIterator[Sink]:
    sink = Sink(settings)
    task = asyncio.create_task(sink.run())
    try:
        yield sink
    finally:
        sink.stop()
        await task


async def activity(db: asyncpg.Pool) -> int:
    return int(await db.fetchval("SELECT count(*) FROM catalog_activity"))


async def test_the_sink_projects_both_topics_and_wakes_the_waiters_and_a_replay_rebuilds_it(
    settings: Settings, db: asyncpg.Pool
) -> None:
    notified: list[str] = []
    listener = await asyncpg.connect(settings.database_url)
    await listener.add_listener(
        CHANNEL,
        # each line: a key, or a key and the outcome it carries
        lambda *args: notified.extend(line.split("\t")[0] for line in args[3].split("\n")),
    )
    await produce(settings, definition_records(), event_records())
    try:
        async with running_sink(settings):
            await wait_for(lambda: activity(db), lambda n: n == len(EVENTS), what="the events")
            await wait_for(
                lambda: db.fetchval("SELECT count(*) FROM catalog_collections"),
                lambda n: n == 1,
                what="the collection",
            )
            rows = await snapshot(db)
            check_rows(rows)
            await produce(settings, BAD_DEFINITIONS, BAD_EVENTS)
            dead = await wait_for(
                lambda: messages_on_topic(settings, topics_for(settings).deadletter.name),
                lambda letters: len(letters) == 2,
                what="the dead letters",
            )
            assert sorted(letter["reason"] for letter in dead) == ["invalid_json", "wrong_key"]
            assert await snapshot(db) == rows
            beside = await replay_catalog(settings)  # beside the running sink
            assert await snapshot(db) == rows
    finally:
        await listener.close()
    assert {command_key(e.event_id) for e in EVENTS} <= set(notified)
    assert {
        catalog_definition_key("acme", "offer", 1),
        catalog_definition_key("acme", "collection", 1),
        catalog_definition_key("globex", "offer", 1),
    } <= set(notified)
    assert beside.skipped == 2  # the record of no catalog key, the broken event
    assert beside.lost == dict.fromkeys(KEYS, 0)

    await db.execute(f"TRUNCATE {', '.join(KEYS)}")
    summary = await replay_catalog(settings)
    assert await snapshot(db) == rows
    assert summary.after == {table: len(rows[table]) for table in KEYS}
    assert f"catalog_activity 0 -> {len(EVENTS)}," in summary.line()


def restarted(settings: Settings) -> Settings:
    """Settings naming catalog topics that hold only what came after a broker restart."""
    return settings.model_copy(update={"topic_prefix": f"{settings.topic_prefix}restarted."})


async def test_a_replay_of_topics_that_lost_records_refuses_unless_forced(
    settings: Settings, db: asyncpg.Pool
) -> None:
    await write(db, DEFINITIONS, EVENTS)
    rows = await snapshot(db)
    after_restart = restarted(settings)
    with pytest.raises(ReplayError, match="does not exist"):
        await replay_catalog(after_restart)

    globex = OWNERS[2]
    await produce(
        after_restart,
        [(globex.key, globex.definitions[0].model_dump_json().encode())],
        [(globex.key, globex.events[0].model_dump_json().encode())],
    )
    with pytest.raises(ReplayRefused, match="lack rows the tables hold") as refused:
        await replay_catalog(after_restart)
    assert refused.value.missing == {
        "catalog_offers": 1,
        "catalog_collections": 1,
        "catalog_integrations": 1,
        "catalog_activity": len(EVENTS) - 1,
        "catalog_counts": 1,
        "catalog_members": 3,
    }
    assert await snapshot(db) == rows

    forced = await replay_catalog(after_restart, force=True)
    assert forced.after == {
        "catalog_offers": 1,
        "catalog_collections": 0,
        "catalog_integrations": 0,
        "catalog_activity": 1,
        "catalog_counts": 1,
        "catalog_members": 0,
    }


async def catalog_records(settings: Settings) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topics_for(settings).catalog.name,
        bootstrap_servers=settings.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records = []
    try:
        while fetched := await consumer.getmany(timeout_ms=1000):
            records += [r for batch in fetched.values() for r in batch]
        return records
    finally:
        await consumer.stop()


async def test_restore_publishes_the_latest_definitions_on_an_empty_catalog_topic(
    settings: Settings, db: asyncpg.Pool
) -> None:
    assert await restore_catalog(settings) == 0  # nothing in PostgreSQL
    await write(db, DEFINITIONS, EVENTS)

    assert await restore_catalog(settings) == len(OWNERS)
    records = await catalog_records(settings)
    restored = CatalogDefinitionsProjection(topics_for(settings).catalog.name).read(records)
    latest = [o.definitions[-1] for o in OWNERS]
    assert sorted(restored, key=repr) == sorted(latest, key=repr)
    assert {r.key for r in records} == {o.key for o in OWNERS}

    assert await restore_catalog(settings) == 0  # the topic holds them: left as it is
    assert len(await catalog_records(settings)) == len(OWNERS)
    assert all(json.loads(r.value)["version"] >= 1 for r in records)


async def test_the_buckets_of_reservations_are_projected_read_and_restored(
    db: asyncpg.Pool,
) -> None:
    """catalog_counts.ending holds the owner's buckets as its newest event left them;
    the member read counts an ended one released as of its now, and an owner restored
    from PostgreSQL gets them back, as from its members' grants (projected before)."""
    offer = Owner("initech", "offer", 1)
    offer.define(
        "create",
        **CatalogOfferFields(
            status="published", name={"en": "Short"}, stock=3, usable_in_seconds_after_granting=600
        ).model_dump(mode="json"),
    )
    offer.member("u1", "grant")
    offer.member("u2", "grant")
    last = offer.member("u3", "grant")
    assert len(last.counts.ending) >= 2 and last.counts.reserved_count == 3
    await write(db, offer.definitions, offer.events[:-1])
    await write(db, [], offer.events)  # the newest one last, older ones again
    ending = await db.fetchval("SELECT ending FROM catalog_counts WHERE tenant_id = 'initech'")
    assert json.loads(ending) == [r.model_dump(mode="json") for r in last.counts.ending]

    read = (await member_context(db, "initech", "u4", [1])).counts_of(1)
    first = last.counts.ending[0]
    assert read.ending == last.counts.ending
    assert reserved_as_of(read, first.holds_until - timedelta(microseconds=1)) == 3
    assert reserved_as_of(read, first.holds_until) == 3 - first.count
    assert reserved_as_of(read, last.counts.ending[-1].holds_until) == 0

    restored = await load_offer_state(db, "initech", "offer", 1)
    assert restored is not None
    assert restored.reservations == offer.state.reservations
    assert restored.counts == offer.state.counts
    await db.execute("UPDATE catalog_counts SET ending = NULL WHERE tenant_id = 'initech'")
    from_members = await load_offer_state(db, "initech", "offer", 1)
    assert from_members is not None and from_members.reservations == offer.state.reservations


async def test_an_encoded_offer_used_stays_used_for_an_owner_restored_from_postgresql(
    db: asyncpg.Pool,
) -> None:
    """The owner keeps the tokens used in its state, which a broker that lost its topics
    loses with the changelog: the use events carry the token, and a member restored
    from PostgreSQL has them back, so the token is refused a second time."""
    offer = Owner("umbrella", "offer", 1)
    offer.define(
        "create",
        **CatalogOfferFields(status="published", name={"en": "At the till"}).model_dump(
            mode="json"
        ),
    )
    assert offer.member("u1", "use", encoded_token_id="tok-1").encoded_token_id == "tok-1"
    offer.member("u1", "use")
    await write(db, offer.definitions, offer.events)

    later = offer.clock + timedelta(days=2)  # the decided events are no longer restored
    restored = await load_member_state(db, "umbrella", 1, "u1", later, timedelta(hours=1))
    assert restored is not None and restored.state.used_tokens == ["tok-1"]
    again = MemberCommand(
        command_id="second-till",
        tenant_id="umbrella",
        offer_id=1,
        external_customer_id="u1",
        action="use",
        issued_at=later,
        encoded_token_id="tok-1",
    )
    offer_state = await load_offer_state(db, "umbrella", "offer", 1)
    assert offer_state is not None
    _, _, refused = decide_member(offer_state, restored.state, again)
    assert (refused.kind, refused.reason) == ("refused", "token_used")
