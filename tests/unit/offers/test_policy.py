"""Policy: each check on a draft, what it corrects, what it rejects, and offer codes."""

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from proffer_stream.offers import policy as policy_module
from proffer_stream.offers.models import OfferDraft, OfferTerms
from proffer_stream.offers.policy import (
    DISCOUNTED_TYPES,
    OFFER_CODE,
    Policy,
    clean_text,
    judge,
    offer_code,
    reachable_channels,
)
from proffer_stream.offers.rules import WriterHints
from proffer_stream.signals.fold import new_signals

pytestmark = pytest.mark.unit

ALL = ["email", "sms", "push", "in_app"]
NOW = datetime(2026, 3, 17, 12, 0, tzinfo=UTC)


def customer():
    state = new_signals("acme", "u1")
    state.name = "Sarah Chen"
    state.page_views = {"/pricing": 3}
    return state


def draft(**changes):
    """A draft whose copy states its own terms (the percent, when it has one)."""
    offered = changes.get("offer_type", "discount")
    percent = 15 if offered in DISCOUNTED_TYPES else None
    terms = {"discount_percent": percent, "code": "SARAH", "valid_days": 7}
    terms |= changes.pop("terms", {})
    off = f"{terms['discount_percent']}% off" if terms["discount_percent"] else "a gift"
    fields = {
        "headline": f"Sarah, {off} your next order",
        "body_copy": f"You viewed /pricing 3 times. Here is {off}.",
        "offer_type": "discount",
        "offer_terms": OfferTerms(**terms),
        "channel": "email",
        "reasoning": "Rule pricing-interest fired.",
        **changes,
    }
    return OfferDraft(**fields)


def run(the_draft, policy=None, *, reachable=ALL, hints=None, offer_id=1, profile=None):
    return judge(
        the_draft,
        policy or Policy(),
        reachable=reachable,
        hints=hints,
        offer_id=offer_id,
        profile=profile or customer(),
        now=NOW,
    )


def outcome(judgement, check):
    [verdict] = [v for v in judgement.verdicts if v.check == check]
    return verdict.outcome


def test_a_good_draft_passes_every_check_but_the_code():
    judged = run(draft())
    assert judged.rejected_because == []
    assert {v.check: v.outcome for v in judged.verdicts} == {
        "offer_type": "passed",
        "discount": "passed",
        "valid_days": "passed",
        "channel": "passed",
        "code": "corrected",
        "headline": "passed",
        "body_copy": "passed",
        "conditions": "passed",
        "reasoning": "passed",
        "copy_terms": "passed",
        "links": "passed",
        "instructions": "passed",
    }
    assert judged.draft == draft(terms={"code": offer_code("SARAH", 1)})


def test_judging_is_idempotent_and_leaves_the_input_alone():
    original = draft(headline="<b>Hi</b>", terms={"discount_percent": 90, "valid_days": 99})
    snapshot = original.model_dump()
    once = run(original)
    assert original.model_dump() == snapshot
    twice = run(once.draft)
    assert twice.draft == once.draft
    assert {v.outcome for v in twice.verdicts} == {"passed"}


def test_an_offer_type_not_allowed_is_rejected():
    judged = run(draft(offer_type="bundle"), Policy(offer_types=["discount"]))
    assert judged.draft is None and outcome(judged, "offer_type") == "rejected"
    assert judged.rejected_because == [
        "offer_type: bundle offers are not allowed by policy (allowed: discount)"
    ]


def test_an_offer_type_the_rule_does_not_ask_for_is_rejected():
    hints = WriterHints(offer_types=["free_shipping"])
    judged = run(draft(), hints=hints)
    assert judged.draft is None
    assert "not what the rule asks for" in judged.rejected_because[0]
    assert run(draft(), hints=WriterHints()).draft is not None  # no types: any


def test_a_discount_above_the_limits_is_lowered():
    judged = run(draft(terms={"discount_percent": 50}), Policy(max_discount_percent=30))
    assert judged.draft.offer_terms.discount_percent == 30
    assert outcome(judged, "discount") == "corrected"
    hinted = run(draft(terms={"discount_percent": 50}), hints=WriterHints(max_discount_percent=15))
    assert hinted.draft.offer_terms.discount_percent == 15
    other = run(draft(offer_type="upgrade", terms={"discount_percent": 90}))
    assert other.draft.offer_terms.discount_percent == 30


@pytest.mark.parametrize("percent", [None, 0])
def test_a_discount_offer_without_a_discount_is_rejected(percent):
    judged = run(draft(terms={"discount_percent": percent}))
    assert judged.draft is None
    assert judged.rejected_because == ["discount: a discount offer without a discount percent"]


def test_a_discount_offer_when_no_discount_is_allowed_is_rejected():
    judged = run(draft(), Policy(max_discount_percent=0))
    assert judged.rejected_because == [
        "discount: a discount offer, but at most 0% discount is allowed"
    ]
    assert run(draft(offer_type="content", terms={"discount_percent": None})).draft is not None


@pytest.mark.parametrize(("days", "expected"), [(0, 3), (3, 3), (10, 10), (365, 14)])
def test_valid_days_are_brought_within_bounds(days, expected):
    judged = run(draft(terms={"valid_days": days}), Policy(min_valid_days=3, max_valid_days=14))
    assert judged.draft.offer_terms.valid_days == expected
    assert outcome(judged, "valid_days") == ("passed" if days == expected else "corrected")


def test_a_channel_that_does_not_reach_the_customer_is_replaced():
    judged = run(draft(channel="sms"), reachable=["email", "in_app"])
    assert judged.draft.channel == "email" and outcome(judged, "channel") == "corrected"
    not_allowed = run(draft(channel="email"), Policy(channels=["push", "in_app"]))
    assert not_allowed.draft.channel == "push"
    hinted = run(
        draft(channel="sms"), reachable=["email", "in_app"], hints=WriterHints(channel="in_app")
    )
    assert hinted.draft.channel == "in_app"
    unreachable = run(draft(channel="sms"), reachable=["in_app"], hints=WriterHints(channel="push"))
    assert unreachable.draft.channel == "in_app"


def test_no_allowed_channel_that_reaches_the_customer_is_a_rejection():
    judged = run(draft(), Policy(channels=["sms"]), reachable=["email", "in_app"])
    assert judged.draft is None and outcome(judged, "channel") == "rejected"


@pytest.mark.parametrize(
    ("given", "prefix"),
    [("SARAH", "SARAH"), ("sarah-chen!", "SARAHCHEN"), (None, "DISCOUNT"), ("", "DISCOUNT")],
)
def test_the_code_is_always_made_from_the_offer_id(given, prefix):
    judged = run(draft(terms={"code": given}), offer_id=77)
    assert judged.draft.offer_terms.code == offer_code(prefix, 77)


def test_markup_and_control_characters_are_stripped():
    judged = run(
        draft(
            headline="# <b>Big</b> **deal** for\x00 _you_",
            body_copy="<p>Buy</p>\n\n[now](/offers) ~~or~~ `later`\x1b<br/>&lt;i&gt;soon&lt;/i&gt;",
            reasoning="<i>because</i>\u202e",
        )
    )
    assert judged.draft.headline == "Big deal for you"
    assert judged.draft.body_copy == "Buy now or later soon"
    assert judged.draft.reasoning == "because"
    assert outcome(judged, "headline") == "corrected"


@pytest.mark.parametrize(
    "body",
    [
        "<script>alert(1)</script> Buy now",
        "&lt;script&gt;alert(1)&lt;/script&gt; Buy now",
        "&amp;lt;script&amp;gt; Buy now",
        '<img src=x onerror="fetch(1)"> Buy now',
        "<iframe src=//x></iframe> Buy now",
    ],
    ids=["script", "escaped-script", "twice-escaped", "handler", "iframe"],
)
def test_markup_that_runs_code_is_rejected_escaped_or_not(body):
    judged = run(draft(body_copy=body))
    assert judged.draft is None and outcome(judged, "body_copy") == "rejected"
    assert "markup that runs code" in judged.rejected_because[0]


def test_copy_empty_once_cleaned_is_rejected():
    judged = run(draft(headline="<b></b> ** ", body_copy="\x00\x01"))
    assert judged.draft is None
    assert [r.split(":")[0] for r in judged.rejected_because] == ["headline", "body_copy"]


def test_long_copy_is_cut_at_a_word_boundary():
    headline = "Sarah, here is a very generous offer on everything you looked at this week"
    judged = run(draft(headline=headline), Policy(max_headline_chars=30))
    assert judged.draft.headline == "Sarah, here is a very…"
    assert outcome(judged, "headline") == "corrected"
    assert len(run(draft(reasoning="word " * 1000)).draft.reasoning) <= 2000


def test_clean_text_keeps_plain_text_and_bounds_length():
    assert clean_text("snake_case and 5 < 6", 100) == "snake_case and 5 6"
    assert clean_text("x" * 50, 10) == "x" * 9 + "…"


def test_every_rejection_is_reported():
    bad = draft(offer_type="bundle", headline="<br>", channel="push")
    judged = run(bad, Policy(offer_types=["discount"], channels=["sms"]), reachable=["in_app"])
    rejected = [r.split(":")[0] for r in judged.rejected_because]
    assert rejected == ["offer_type", "channel", "headline"]


def test_codes_are_distinct_for_consecutive_ids():
    for start in (0, 1, 2**30 - 5_000, 2**53 - 10_001):
        codes = {offer_code("SARAH", n) for n in range(start, start + 10_000)}
        assert len(codes) == 10_000
        assert all(OFFER_CODE.match(code) for code in codes)


def test_codes_are_deterministic_and_upper_case():
    assert offer_code("Zoë O'Neil", 5) == offer_code("ZOË O'NEIL", 5)
    assert offer_code("Zoë O'Neil", 5).startswith("ZOONEIL-")
    assert offer_code("!!!", 5).startswith("OFFER-")
    assert offer_code("a" * 40, 5).startswith("A" * 12 + "-")
    assert offer_code("x", 5) != offer_code("x", 6)


def test_reachable_channels():
    state = new_signals("acme", "u1")
    assert reachable_channels(state) == ["in_app"]
    state.email = "s@x.io"
    state.metadata = {"phone": "+44 20 7946 0000", "push_token": "tok"}
    assert reachable_channels(state) == ["email", "sms", "push", "in_app"]
    state.metadata = {"phone": "  ", "push_token": 42}
    assert reachable_channels(state) == ["email", "in_app"]


@pytest.mark.parametrize(
    "fields",
    [
        {"min_valid_days": 10, "max_valid_days": 5},
        {"offer_types": []},
        {"channels": []},
        {"max_discount_percent": 101},
        {"offer_types": ["freebie"]},
    ],
)
def test_a_bad_policy_is_refused(fields):
    with pytest.raises(ValidationError):
        Policy(**fields)


@given(st.text(alphabet=st.sampled_from("ab _*#<>[]()`~\t\n\x00\u200e\u00a0é")) | st.text())
def test_text_without_markup_takes_a_shortcut_to_the_same_plain_text(text):
    slow = text
    while (once := policy_module._strip_once(slow)) != slow:
        slow = once
    assert policy_module._plain(text) == slow
