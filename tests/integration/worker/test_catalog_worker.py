"""The catalog owner in a real worker: 500 members racing for a stock of 100 get exactly
100 uses, and one member racing for a limit of 3 gets exactly 3; and, without a broker,
an offer the broker lost restored from PostgreSQL with its counts and members."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from catalog_race import TENANT, assert_exact, decided, records, the_stock_race
from support import messages_on_topic, produce_paced, wait_for

from proffer_stream.catalog.models import (
    CatalogOfferFields,
    MemberCommand,
)
from proffer_stream.kafka.topics import topics_for

pytestmark = pytest.mark.integration


async def test_500_members_racing_for_a_stock_of_100_get_exactly_100(settings, processes):
    processes.start("worker", settings)
    stock, solo = the_stock_race()
    topic = topics_for(settings).catalog_commands.name
    await produce_paced(settings, topic, records(stock + solo), per_second=2_000)
    by_id, kinds = await wait_for(
        lambda: decided(settings),
        lambda found: len(found[0]) == len(stock) + len(solo),
        timeout=90,
        what="every command decided",
    )
    assert_exact(by_id, kinds)
    definitions = await messages_on_topic(settings, topics_for(settings).catalog.name)
    assert sorted(d["id"] for d in definitions) == [1, 2]


class Transaction:
    """A table transaction that holds everything (no broker)."""

    def __init__(self):
        self.table = {}

    def held(self, partition, key):
        return self.table.get(key)

    def stored(self, partition, key):
        return None

    def set(self, partition, key, value):
        self.table[key] = value


class Outbox:
    def __init__(self):
        self.events = []

    async def definition(self, key, definition):
        pass

    async def event(self, key, event):
        self.events.append(event)


async def insert_offer(db, offer_id, seq, uses, **fields):
    now = datetime.now(UTC) - timedelta(days=2)
    definition = {
        **CatalogOfferFields(status="published", **fields).model_dump(mode="json"),
        "id": offer_id,
        "tenant_id": TENANT,
        "version": 2,
        "created_at": now.isoformat(),
        "updated_at": now.isoformat(),
        "command_id": "made-before",
    }
    await db.execute(
        "INSERT INTO catalog_offers VALUES ($1, $2, 2, 'regular', 'published', $3, $4, $4)",
        TENANT,
        offer_id,
        json.dumps(definition),
        now,
    )
    await db.execute(
        "INSERT INTO catalog_counts (tenant_id, offer_id, seq, uses_count) VALUES ($1, $2, $3, $4)",
        TENANT,
        offer_id,
        seq,
        uses,
    )


async def insert_member_use(db, offer_id, member, uses, at, event_id):
    await db.execute(
        "INSERT INTO catalog_members (tenant_id, offer_id, external_customer_id, seq, uses,"
        " last_used_at) VALUES ($1, $2, $3, 1, $4, $5)",
        TENANT,
        offer_id,
        member,
        uses,
        at,
    )
    event = {
        "event_id": event_id,
        "kind": "used",
        "action": "use",
        "tenant_id": TENANT,
        "offer_id": offer_id,
        "external_customer_id": member,
        "at": at.isoformat(),
        "seq": 1,
        "counts": {"uses_count": 1},
        "member": {"uses": uses},
    }
    await db.execute(
        "INSERT INTO catalog_activity (tenant_id, event_id, offer_id, external_customer_id,"
        " kind, action, at, seq, event, target)"
        " VALUES ($1, $2, $3, $4, 'used', 'use', $5, 1, $6, 'offer')",
        TENANT,
        event_id,
        offer_id,
        member,
        at,
        json.dumps(event),
    )


async def test_an_offer_the_broker_lost_is_restored_from_postgresql(settings, db):
    from proffer_stream.worker.catalog_owner import CatalogOwner, CatalogStore

    await insert_offer(db, 5, seq=40, uses=9, stock=10, maximum_uses_per_user=2)
    await insert_offer(db, 6, seq=3, uses=1, periodic_usage={"timespan": "day", "limit": 1})
    now = datetime.now(UTC)
    await insert_member_use(db, 5, "full", 2, now - timedelta(days=3), "old-use")
    await insert_member_use(db, 6, "daily", 1, now - timedelta(seconds=5), "today-use")
    store = CatalogStore(Transaction(), settings.database_url)
    owner = CatalogOwner(store, Outbox(), dead_letters=None)

    class Source:
        def __init__(self, offset):
            self.partition, self.offset = 0, offset

    def command(offer_id, member, command_id):
        return MemberCommand(
            command_id=command_id,
            tenant_id=TENANT,
            offer_id=offer_id,
            external_customer_id=member,
            action="use",
            issued_at=now,
        )

    try:
        for offset, args in enumerate(
            [
                (5, "full", "u1"),  # two uses in PostgreSQL already: the limit
                (5, "new", "u2"),  # the tenth of a stock of 10
                (5, "late", "u3"),  # none left
                (6, "daily", "u4"),  # used today
                (6, "daily", "today-use"),  # decided before the broker was lost: as it was
            ]
        ):
            await owner.decide(Source(offset), command(*args))
    finally:
        await store.close()
    events = owner.outbox.events
    assert [(e.kind, e.reason) for e in events] == [
        ("refused", "per_user_limit"),
        ("used", None),
        ("refused", "out_of_stock"),
        ("refused", "periodic_limit"),
        ("used", None),
    ]
    assert events[1].counts.uses_count == 10 and events[1].seq == 42
    assert events[4].event_id == "today-use" and events[4].seq == 1
