"""The catalog owner without a broker: one decision per command id, a command seen again
answered as before with no state changed, records of an unfinished checkpoint ignored,
and bad records dead-lettered."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from test_profile_store import FakeTable

from proffer_stream.catalog.limits import MemberState
from proffer_stream.catalog.models import (
    CatalogOfferFields,
    DefinitionCommand,
    MemberCommand,
    MemberCounts,
    catalog_key,
    collection_key,
)
from proffer_stream.core.errors import BadRecord
from proffer_stream.worker.catalog_owner import (
    CatalogOwner,
    CatalogStore,
    MemberEntry,
    MemberRecord,
    OfferRecord,
    encode,
    member_key,
    offer_key,
    read_command,
)

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
KEY = catalog_key("acme", 7)


class Outbox:
    def __init__(self):
        self.definitions, self.events = [], []

    async def definition(self, key, definition):
        self.definitions.append((key, definition))

    async def event(self, key, event):
        self.events.append((key, event))


class DeadLetters:
    def __init__(self):
        self.sent = []

    async def send(self, source, error):
        self.sent.append((source, error))


def source(offset, partition=0, key=KEY, value=b""):
    return SimpleNamespace(partition=partition, offset=offset, key=key, value=value)


def create(stock=2, **fields):
    offer = CatalogOfferFields(status="published", stock=stock, **fields)
    return DefinitionCommand(
        command_id="create-7",
        tenant_id="acme",
        target="offer",
        id=7,
        action="create",
        offer=offer,
        issued_at=NOW,
    )


def use(n, member=None, action="use"):
    return MemberCommand(
        command_id=f"use-{n}",
        tenant_id="acme",
        offer_id=7,
        external_customer_id=member or f"m{n}",
        action=action,
        issued_at=NOW + timedelta(seconds=n),
    )


@pytest.fixture
def owner():
    table = FakeTable()
    store = CatalogStore(table.transaction(encode))
    owner = CatalogOwner(store, Outbox(), DeadLetters())
    owner.table = table
    return owner


async def decide_all(owner, commands, first_offset=0):
    for offset, command in enumerate(commands, start=first_offset):
        await owner.decide(source(offset), command)


async def test_stock_is_never_exceeded_and_each_decision_is_published(owner):
    await decide_all(owner, [create(stock=2), use(1), use(2), use(3)])
    assert [e.kind for _, e in owner.outbox.events] == ["defined", "used", "used", "refused"]
    assert owner.outbox.events[-1][1].reason == "out_of_stock"
    assert [k for k, _ in owner.outbox.events] == [KEY] * 4
    assert owner.outbox.definitions[0][1].version == 1
    record = owner.store.offer(0, offer_key(KEY))
    assert record.state.counts.uses_count == 2 and record.offset == 3


async def test_a_command_seen_again_publishes_its_event_again_and_changes_nothing(owner):
    await decide_all(owner, [create(stock=1), use(1), use(2)])
    before = owner.store.offer(0, offer_key(KEY))
    await owner.decide(source(1), use(1))  # redelivered after a crash
    await owner.decide(source(9), use(2))  # sent again by a client
    await owner.decide(source(10), create(stock=1))
    events = owner.outbox.events
    assert events[3][1] == events[1][1] and events[4][1] == events[2][1]
    assert events[5][1] == events[0][1]
    assert len(owner.outbox.definitions) == 2  # the definition in force, again
    assert owner.store.offer(0, offer_key(KEY)) == before


async def test_a_replay_after_a_checkpoint_decides_the_same_way(owner):
    commands = [create(stock=1), use(1), use(2)]
    await decide_all(owner, commands)
    await owner.table.checkpoint()
    first = list(owner.outbox.events)
    await decide_all(owner, commands)
    assert owner.outbox.events[3:] == first


async def test_a_member_record_newer_than_its_offer_is_taken_as_of_the_checkpoint_before(owner):
    """A crash delivered the member's record but not the offer's that marks it complete."""
    transaction = owner.store.state
    offer = OfferRecord(offset=5)
    old = MemberEntry(state=MemberState(counts=MemberCounts(uses=1)), offset=3)
    new = MemberEntry(state=MemberState(counts=MemberCounts(uses=2)), offset=8)
    transaction.set(0, offer_key(KEY), offer)
    transaction.set(0, member_key(KEY, "m1"), MemberRecord(now=new, before=old))
    await owner.table.checkpoint()
    assert owner.store.member(0, member_key(KEY, "m1"), offer_offset=5) == (old, old)
    assert owner.store.member(0, member_key(KEY, "m1"), offer_offset=8) == (new, new)


async def test_the_offer_record_reaches_the_changelog_after_its_members(owner):
    await decide_all(owner, [create(stock=5), use(1), use(2)])
    await owner.table.checkpoint()
    keys = [key for key, _ in owner.table.sent]
    assert keys == [member_key(KEY, "m1"), member_key(KEY, "m2"), offer_key(KEY)]


async def test_an_unknown_offer_is_refused_and_a_collection_has_its_own_owner(owner):
    await owner.decide(source(0), use(1))
    assert owner.outbox.events[0][1].reason == "unknown_offer"
    collection = DefinitionCommand.model_validate(
        {
            "command_id": "c1",
            "tenant_id": "acme",
            "target": "collection",
            "id": 7,
            "action": "create",
            "collection": {"title": {"en": "Spring"}},
            "issued_at": NOW,
        }
    )
    await owner.decide(source(1, key=collection_key("acme", 7)), collection)
    key, event = owner.outbox.events[1]
    assert key == collection_key("acme", 7) and event.kind == "defined"


def test_a_command_must_be_keyed_by_its_catalog_offer_and_readable():
    value = use(1).model_dump_json().encode()
    assert read_command(KEY, value).command_id == "use-1"
    definition = create().model_dump_json().encode()
    assert isinstance(read_command(KEY, definition), DefinitionCommand)
    with pytest.raises(BadRecord, match="it must be") as wrong:
        read_command(catalog_key("acme", 8), value)
    assert wrong.value.reason == "wrong_key"
    with pytest.raises(BadRecord) as bad:
        read_command(KEY, b"{not json")
    assert bad.value.reason == "invalid_json"
    with pytest.raises(BadRecord, match="timezone"):
        read_command(KEY, use(1).model_copy(update={"timezone": "Mars/Olympus"}).model_dump_json())
    with pytest.raises(BadRecord, match="action") as unknown:
        read_command(KEY, b'{"action": "steal"}')
    assert unknown.value.reason == "invalid_message"


@pytest.mark.parametrize("name", ["Europe", "Etc", "America/", "x" * 300, "../../etc/passwd"])
def test_a_time_zone_that_is_no_zone_is_a_bad_record_not_a_crash(name):
    value = use(1).model_copy(update={"timezone": name}).model_dump_json()
    with pytest.raises(BadRecord, match="timezone") as bad:
        read_command(KEY, value)
    assert bad.value.reason == "invalid_message"


def test_a_command_issued_far_after_its_record_was_written_is_refused():
    """Decided, it would move the owner's clock to then for good (every grant's stock
    released at once); refused by the record's timestamp, so a replay refuses it too."""
    written_ms = int(NOW.timestamp() * 1000)
    ahead = use(1).model_copy(update={"issued_at": NOW + timedelta(days=3650)})
    with pytest.raises(BadRecord, match="issued_at") as bad:
        read_command(KEY, ahead.model_dump_json(), written_ms)
    assert bad.value.reason == "invalid_message"
    skewed = use(1).model_copy(update={"issued_at": NOW + timedelta(minutes=4)})
    assert read_command(KEY, skewed.model_dump_json(), written_ms).command_id == "use-1"
    late = use(1).model_copy(update={"issued_at": NOW - timedelta(days=30)})
    assert read_command(KEY, late.model_dump_json(), written_ms).command_id == "use-1"


async def test_a_command_whose_time_breaks_the_bookkeeping_is_dead_lettered(owner):
    await decide_all(owner, [create()])
    first = use(1).model_copy(update={"issued_at": datetime(1, 1, 1, 0, 30, tzinfo=UTC)})
    await owner.decide(source(1), first)  # the year 1: an hour before it overflows
    assert [e.reason for _, e in owner.dead_letters.sent] == ["processing_error"]
    await owner.decide(source(2), use(2))  # and the next command is decided
    assert [e.kind for _, e in owner.outbox.events] == ["defined", "used"]


async def test_bad_records_are_dead_lettered_and_the_rest_go_on(owner):
    good = use(1).model_dump_json().encode()
    batch = [
        SimpleNamespace(
            message=SimpleNamespace(**vars(source(0, value=b"{")), timestamp=0, topic="t")
        ),
        SimpleNamespace(
            message=SimpleNamespace(**vars(source(1, value=good)), timestamp=0, topic="t")
        ),
    ]
    await owner.process(batch)
    assert [e.reason for _, e in owner.dead_letters.sent] == ["invalid_json"]
    assert [e.kind for _, e in owner.outbox.events] == ["refused"]
