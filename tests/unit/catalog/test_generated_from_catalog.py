"""Generated offers bound to the catalog, without a broker: which catalog offer a rule's
hints give, the built-in writer and policy within its terms, the decision held until the
grant is answered, and the commands between the offers agent and the owner."""

from datetime import UTC, datetime, timedelta

import pytest

from proffer_stream.catalog.generated import (
    answer_to_grant,
    brief_of,
    candidates,
    catalog_follow_up,
    choose,
    grant_command,
)
from proffer_stream.catalog.limits import MemberState, OfferState, decide_member
from proffer_stream.catalog.models import (
    CatalogDefinition,
    CatalogTerms,
    CollectionDefinition,
)
from proffer_stream.offers.commands import apply_command
from proffer_stream.offers.decide import CustomerOffers, conclude, hold_for_grant
from proffer_stream.offers.models import (
    OfferCommand,
    OfferDraft,
    OfferRequest,
    OfferTerms,
    WriterTrace,
)
from proffer_stream.offers.policy import Policy, judge
from proffer_stream.offers.prompt import offer_prompt
from proffer_stream.offers.rules import RuleConditions, TriggerRule, WriterHints
from proffer_stream.offers.writer import write_builtin
from proffer_stream.signals.fold import new_signals

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
TERMS = CatalogTerms(discount_percent=15, code_pattern="SPRING-####", valid_days=5)


def offer(id, **fields):
    values = {
        "type": "regular",
        "status": "published",
        "name": {"en": "Spring sale", "pl": "Wiosna"},
        "description": {"en": "Spring styles for less."},
        "terms": TERMS,
        **fields,
    }
    return CatalogDefinition(
        id=id,
        tenant_id="acme",
        version=1,
        created_at=NOW,
        updated_at=NOW,
        command_id=f"c{id}",
        **values,
    )


def customer(**fields):
    state = new_signals("acme", "ann")
    state.name, state.email = "Ann Lee", "ann@example.com"
    state.page_views = {"/pricing": 3}
    for name, value in fields.items():
        setattr(state, name, value)
    return state.profile()


def rule(**hints):
    return TriggerRule(
        id="spring",
        name="Spring",
        conditions=RuleConditions(min_page_views={"/pricing": 2}),
        hints=WriterHints(**hints),
    )


def test_the_first_offer_the_customer_may_have_is_chosen_and_the_others_say_why_not():
    offers = {
        1: offer(1, archived_at=NOW),
        2: offer(2, status="draft"),
        3: offer(3, usable_until=NOW - timedelta(days=1), usable_since=NOW - timedelta(days=9)),
        4: offer(4, audience=RuleConditions(metadata_equals={"plan": "pro"})),
        5: offer(5, type="informational"),
        6: offer(6),
    }
    hints = WriterHints(catalog_offer_ids=[9, 1, 2, 3, 4, 5, 6])
    choice = choose(offers, {}, hints, customer(), NOW, "en")
    assert choice.brief is not None and choice.brief.catalog_offer_id == 6
    assert choice.brief.name == "Spring sale" and choice.brief.code_pattern == "SPRING-####"
    assert choice.passed_over == [
        "9 not in the catalog",
        "1 is archived",
        "2 is draft",
        "3 is outside its usable window",
        "4 has an audience the customer is not in",
        "5 is informational, never used",
    ]
    assert choice.suppression() == []
    none = choose({1: offers[1]}, {}, WriterHints(catalog_offer_ids=[1]), customer(), NOW, "en")
    assert none.suppression() == ["no catalog offer to give: 1 is archived"]


def test_collections_give_their_offers_in_order_after_the_offers_named():
    offers = {i: offer(i, collection_ids=[50]) for i in (11, 12, 13)}
    collection = CollectionDefinition(
        id=50,
        tenant_id="acme",
        version=1,
        created_at=NOW,
        updated_at=NOW,
        command_id="c50",
        offers_order=[13],
    )
    hints = WriterHints(catalog_offer_ids=[12], catalog_collection_ids=[50, 51])
    assert candidates(offers, {50: collection}, hints) == [12, 13, 11]


def test_the_builtin_writer_and_policy_keep_within_the_catalog_terms():
    brief = brief_of(offer(6, channels=["in_app"]), "en")
    spring = rule(max_discount_percent=30, catalog_offer_ids=[6])
    draft = write_builtin(customer(), spring, Policy(), NOW, brief)
    assert draft == write_builtin(customer(), spring, Policy(), NOW, brief)
    assert draft.headline == "Ann, Spring sale"
    assert "Spring styles for less." in draft.body_copy and "/pricing" in draft.body_copy
    assert (draft.offer_type, draft.offer_terms.discount_percent) == ("discount", 15)
    assert (draft.offer_terms.valid_days, draft.channel) == (5, "in_app")

    judged = judge(
        draft,
        Policy(),
        reachable=["email", "in_app"],
        hints=spring.hints,
        offer_id=123456789,
        profile=customer(),
        now=NOW,
        brief=brief,
    )
    assert judged.draft is not None, judged.rejected_because
    code = judged.draft.offer_terms.code
    assert code.startswith("SPRING-") and len(code) == len("SPRING-####") and "#" not in code

    # A model's draft asking for more than the catalog gives is held to it.
    greedy = OfferDraft(
        headline="Spring sale: 40% off for 30 days",
        body_copy="Take 40% off, valid for 30 days.",
        offer_type="discount",
        offer_terms=OfferTerms(discount_percent=40, valid_days=30, code="MINE"),
        channel="email",
        reasoning="signals",
    )
    held = judge(
        greedy,
        Policy(),
        reachable=["email", "in_app"],
        hints=spring.hints,
        offer_id=123456789,
        profile=customer(),
        now=NOW,
        brief=brief,
    )
    assert held.draft is not None, held.rejected_because
    terms = held.draft.offer_terms
    assert (terms.discount_percent, terms.valid_days, terms.code) == (15, 5, code)
    assert held.draft.channel == "in_app"  # the catalog offer's channels only
    assert "15% off" in held.draft.headline and "5 days" in held.draft.headline


def test_the_prompt_gives_the_model_the_catalog_offer_and_its_bounds():
    brief = brief_of(offer(6), "en")
    user = offer_prompt(customer(), rule(catalog_offer_ids=[6]), Policy(), NOW, brief).user
    assert '"name": "Spring sale"' in user and "discount_percent: at most 15" in user
    assert "valid_days: from 1 to 5" in user


def decision(catalog_offer_id=6):
    request = OfferRequest(
        request_id="r1",
        tenant_id="acme",
        external_customer_id="ann",
        source="rule",
        rule_id="spring",
        rule_version=1,
        requested_at=NOW,
    )
    brief = brief_of(offer(catalog_offer_id), "en")
    spring = rule(catalog_offer_ids=[catalog_offer_id])
    state = CustomerOffers(tenant_id="acme", external_customer_id="ann")
    written = (
        write_builtin(customer(), spring, Policy(), NOW, brief),
        WriterTrace(kind="built-in"),
    )
    event = conclude(
        state,
        request,
        0,
        signals=customer(),
        rule=spring,
        policy=Policy(),
        now=NOW,
        suppressed=[],
        written=written,
        brief=brief,
    )
    return state, event


def answer(state, action, reason=None, offset=1, policy=None):
    offer_id = next(iter(state.awaiting_grant))
    command = OfferCommand(
        command_id=f"a-{action}",
        tenant_id="acme",
        external_customer_id="ann",
        action=action,
        offer_id=offer_id,
        cause="catalog offer 6",
        reason=reason,
        issued_at=NOW,
    )
    return apply_command(state, command, offset, policy or Policy())


def test_a_decision_is_held_until_granted_then_issued():
    state, event = decision()
    assert event.offer.catalog_offer_id == 6 and event.trace.catalog.catalog_offer_id == 6
    held = hold_for_grant(state, event)
    assert held == event.offer and state.offers == {}
    grant = grant_command(held)
    assert grant.command_id == f"offer-{held.id}:grant" and grant.for_offer_id == held.id
    assert (grant.offer_id, grant.action, grant.source) == (6, "grant", f"offer {held.id}")

    applied = answer(state, "catalog_granted", policy=Policy(auto_approve=True))
    assert [e.event_type for e in applied.events] == ["offer.generated", "offer.approved"]
    assert applied.events[0] == event and state.offers[held.id].status == "approved"
    assert state.awaiting_grant == {}
    assert answer_again(state) == []


def answer_again(state):
    """An answer to a decision no longer held changes nothing."""
    command = OfferCommand(
        command_id="late",
        tenant_id="acme",
        external_customer_id="ann",
        action="catalog_refused",
        offer_id=1,
        cause="catalog offer 6",
        issued_at=NOW,
    )
    return apply_command(state, command, 9, Policy()).events


def test_a_refused_grant_is_a_suppression_saying_why():
    state, event = decision()
    hold_for_grant(state, event)
    applied = answer(state, "catalog_refused", reason="out_of_stock: all 0 of the stock is used")
    [suppressed] = applied.events
    assert suppressed.event_type == "offer.suppressed" and suppressed.offer is None
    assert suppressed.event_id == event.event_id  # the same decision, never two
    assert suppressed.trace.suppressed == [
        "catalog grant refused: out_of_stock: all 0 of the stock is used"
    ]
    assert suppressed.trace.draft == event.trace.draft and state.offers == {}


def test_the_owner_answers_a_grant_and_a_redemption_is_a_use():
    state, event = decision()
    grant = grant_command(hold_for_grant(state, event))
    owner = OfferState(offer=offer(6, stock=0))
    _, _, refused = decide_member(owner, MemberState(), grant)
    no = answer_to_grant(grant, refused)
    assert no.action == "catalog_refused" and no.offer_id == grant.for_offer_id
    assert no.reason.startswith("out_of_stock: ") and no.command_id.endswith(":refused")
    owner = OfferState(offer=offer(6, stock=1))
    owner, member, granted = decide_member(owner, MemberState(), grant)
    assert answer_to_grant(grant, granted).action == "catalog_granted"
    assert owner.counts.grants_count == 1 and owner.counts.reserved_count == 1

    redeemed = event.model_copy(update={"event_type": "offer.redeemed", "event_id": "evt-9:redeem"})
    use = catalog_follow_up(redeemed, "Europe/Warsaw")
    assert (use.command_id, use.action, use.offer_id) == ("evt-9:redeem:use", "use", 6)
    assert use.timezone == "Europe/Warsaw" and use.for_offer_id == event.offer.id
    assert answer_to_grant(use, granted) is None
    owner, _, used = decide_member(owner, member, use)
    assert used.kind == "used" and owner.counts.uses_count == 1
    assert owner.counts.reserved_count == 0  # the grant's unit, used
    plain = event.model_copy(
        update={
            "event_type": "offer.redeemed",
            "offer": event.offer.model_copy(update={"catalog_offer_id": None}),
        }
    )
    assert catalog_follow_up(plain, "UTC") is None
    approved = event.model_copy(update={"event_type": "offer.approved"})
    assert catalog_follow_up(approved, "UTC") is None


def test_an_offer_that_expired_unredeemed_releases_its_grant():
    state, event = decision()
    grant = grant_command(hold_for_grant(state, event))
    owner, member, _ = decide_member(OfferState(offer=offer(6, stock=1)), MemberState(), grant)
    expired = event.model_copy(update={"event_type": "offer.expired", "event_id": "evt-9:expire"})
    release = catalog_follow_up(expired, "UTC")
    assert (release.command_id, release.action) == ("evt-9:expire:release", "release")
    assert release.for_offer_id == event.offer.id
    owner, _, released = decide_member(owner, member, release)
    assert released.kind == "released"
    assert (owner.counts.reserved_count, owner.counts.released_count) == (0, 1)
