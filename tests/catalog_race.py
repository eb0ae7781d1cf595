"""The catalog stock race the worker's tests share: 500 members for a stock of 100, and
one member 50 times for a limit of 3; the commands, and the checks on what was decided."""

from datetime import UTC, datetime

from support import messages_on_topic

from proffer_stream.catalog.models import (
    CatalogOfferFields,
    DefinitionCommand,
    MemberCommand,
    catalog_key,
)
from proffer_stream.kafka.topics import topics_for

TENANT = "acme"


def create(offer_id, **fields):
    return DefinitionCommand(
        command_id=f"create-{offer_id}",
        tenant_id=TENANT,
        target="offer",
        id=offer_id,
        action="create",
        offer=CatalogOfferFields(status="published", **fields),
        issued_at=datetime.now(UTC),
    )


def use(offer_id, n, member):
    return MemberCommand(
        command_id=f"use-{offer_id}-{n}",
        tenant_id=TENANT,
        offer_id=offer_id,
        external_customer_id=member,
        action="use",
        issued_at=datetime.now(UTC),
    )


def records(commands):
    return [
        (
            catalog_key(TENANT, c.id if isinstance(c, DefinitionCommand) else c.offer_id),
            c.model_dump_json().encode(),
        )
        for c in commands
    ]


def the_stock_race():
    """A create with stock 100 and 500 uses by 500 members; a create with 3 uses per
    member and 50 uses by one member."""
    stock = [create(1, stock=100)] + [use(1, n, f"m{n}") for n in range(500)]
    solo = [create(2, maximum_uses_per_user=3)] + [use(2, n, "solo") for n in range(50)]
    return stock, solo


async def decided(settings):
    """The catalog events on the topic, one per event id (a replay publishes it again)."""
    by_id = {}
    kinds = {}
    for event in await messages_on_topic(settings, topics_for(settings).catalog_events.name):
        kinds.setdefault(event["event_id"], set()).add(event["kind"])
        by_id[event["event_id"]] = event
    return by_id, kinds


def assert_exact(by_id, kinds):
    assert all(len(k) == 1 for k in kinds.values()), "an event id published as two kinds"
    offer1 = [e for e in by_id.values() if e["offer_id"] == 1 and e["action"] == "use"]
    used = [e for e in offer1 if e["kind"] == "used"]
    refused = [e for e in offer1 if e["kind"] == "refused"]
    assert len(used) == 100 and len(refused) == 400
    assert {e["reason"] for e in refused} == {"out_of_stock"}
    last = max(offer1, key=lambda e: e["seq"])
    assert last["counts"]["uses_count"] == 100
    assert max(e["counts"]["uses_count"] for e in offer1) == 100
    solo = [e for e in by_id.values() if e["offer_id"] == 2 and e["action"] == "use"]
    assert sum(e["kind"] == "used" for e in solo) == 3
    assert {e["reason"] for e in solo if e["kind"] == "refused"} == {"per_user_limit"}
