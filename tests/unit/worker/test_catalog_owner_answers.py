"""The catalog owner answers the grant of a generated offer to its offers agent, again
when the grant is seen again (the agent applies an answer once)."""

import pytest
from test_catalog_owner import NOW, DeadLetters, Outbox, create, source
from test_profile_store import FakeTable

from proffer_stream.catalog.models import MemberCommand
from proffer_stream.worker.catalog_owner import CatalogOwner, CatalogStore, encode

pytestmark = pytest.mark.unit


class Answers(Outbox):
    def __init__(self):
        super().__init__()
        self.answers = []

    async def answer(self, command):
        self.answers.append(command)


def grant(offer_id, member):
    return MemberCommand(
        command_id=f"offer-{offer_id}:grant",
        tenant_id="acme",
        offer_id=7,
        external_customer_id=member,
        action="grant",
        issued_at=NOW,
        for_offer_id=offer_id,
    )


async def test_grants_of_generated_offers_are_answered():
    owner = CatalogOwner(CatalogStore(FakeTable().transaction(encode)), Answers(), DeadLetters())
    for offset, command in enumerate([create(stock=1), grant(101, "ann"), grant(102, "bob")]):
        await owner.decide(source(offset), command)
    await owner.decide(source(1), grant(101, "ann"))  # redelivered
    answers = [(a.offer_id, a.action, a.external_customer_id) for a in owner.outbox.answers]
    assert answers == [
        (101, "catalog_granted", "ann"),
        (102, "catalog_refused", "bob"),
        (101, "catalog_granted", "ann"),
    ]
    assert owner.outbox.answers[1].reason.startswith("out_of_stock: ")
    assert owner.outbox.answers[0] == owner.outbox.answers[2]
