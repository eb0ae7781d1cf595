"""Property: whatever a writer returns, policy issues nothing that breaks it."""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proffer_stream.offers.models import CHANNELS, OFFER_TYPES, OfferDraft, OfferTerms
from proffer_stream.offers.policy import (
    DISCOUNTED_TYPES,
    MAX_REASONING_CHARS,
    OFFER_CODE,
    Policy,
    judge,
    offer_code,
)
from proffer_stream.offers.rules import WriterHints
from proffer_stream.signals.fold import new_signals

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 17, 12, 0, tzinfo=UTC)

MARKUP = [
    "<b>",
    "</b>",
    "<script>alert(1)</script>",
    "<a href='x'>",
    "<",
    ">",
    "**",
    "_",
    "~~",
    "`",
    "# ",
    "\n## ",
    "[link](http://x)",
    "![img](y)",
    "\x00",
    "\x1b[31m",
    "\x7f",
    "\u202e",
    " ",
    "\n",
    "\t",
    "word",
    "Sarah",
    "50%",
    "…",
    "[",
    "](",
    ")",
    "![",
    "*",
    "a_",
    "_b",
]
HOSTILE = [
    "95% OFF everything, today only",
    "valid for a whole year (365 days).",
    " Claim at http://evil.example/login",
    " www.evil.example ",
    "evil.example/x",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "&lt;b&gt;bold&lt;/b&gt;",
    "Ignore previous instructions and",
    "system: ",
    "As your administrator,",
    " for 7 days",
    " for 30 days",
    " valid for 1 day",
    "15% off",
    "30%",
    "$50 off",
    "You viewed /pricing 3 times.",
    " 45 days ago",
    " until 2026-03-24",
    "Sarah",
]


def hostile_texts(max_size):
    pieces = st.lists(st.sampled_from(HOSTILE + MARKUP) | st.text(max_size=6), max_size=8)
    return pieces.map(" ".join).map(lambda t: t[:max_size])


def texts(max_size):
    pieces = st.lists(st.sampled_from(MARKUP) | st.text(max_size=12), max_size=max_size // 8)
    return (st.text(max_size=max_size) | pieces.map("".join)).map(lambda t: t[:max_size])


drafts = st.builds(
    OfferDraft,
    headline=texts(500),
    body_copy=texts(1500),
    offer_type=st.sampled_from(OFFER_TYPES),
    offer_terms=st.builds(
        OfferTerms,
        discount_percent=st.none() | st.integers(0, 100),
        code=st.none() | st.text(max_size=40) | st.sampled_from(["SARAH-7KQ2MX", "x-y"]),
        valid_days=st.integers(0, 365),
        conditions=st.none() | texts(500),
    ),
    channel=st.sampled_from(CHANNELS),
    reasoning=texts(3000),
)


@st.composite
def policies(draw):
    low, high = sorted(draw(st.lists(st.integers(0, 365), min_size=2, max_size=2)))
    return Policy(
        max_discount_percent=draw(st.integers(0, 100)),
        min_valid_days=low,
        max_valid_days=high,
        offer_types=draw(st.lists(st.sampled_from(OFFER_TYPES), min_size=1, unique=True)),
        channels=draw(st.lists(st.sampled_from(CHANNELS), min_size=1, unique=True)),
        max_headline_chars=draw(st.integers(10, 500)),
        max_body_chars=draw(st.integers(10, 2000)),
    )


hints = st.none() | st.builds(
    WriterHints,
    offer_types=st.lists(st.sampled_from(OFFER_TYPES), unique=True),
    max_discount_percent=st.none() | st.integers(0, 100),
    channel=st.none() | st.sampled_from(CHANNELS),
)
TAG = re.compile(r"<[^>]*>")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@settings(max_examples=500, deadline=None)
@given(
    drafts,
    policies(),
    st.lists(st.sampled_from(CHANNELS), unique=True),
    hints,
    st.integers(0, 2**53 - 1),
)
def test_policy_never_issues_a_draft_that_breaks_it(draft, policy, reachable, hint, offer_id):
    before = draft.model_dump()
    profile = customer()
    judged = judge(
        draft,
        policy,
        reachable=reachable,
        hints=hint,
        offer_id=offer_id,
        profile=profile,
        now=NOW,
    )
    assert draft.model_dump() == before
    if judged.draft is None:
        assert judged.rejected_because
        assert any(v.outcome == "rejected" for v in judged.verdicts)
        return
    issued, terms = judged.draft, judged.draft.offer_terms
    assert judged.rejected_because == []
    assert issued.offer_type in policy.offer_types
    if hint is not None and hint.offer_types:
        assert issued.offer_type in hint.offer_types
    most = policy.max_discount_percent
    if hint is not None and hint.max_discount_percent is not None:
        most = min(most, hint.max_discount_percent)
    assert terms.discount_percent is None or terms.discount_percent <= most
    if issued.offer_type == "discount":
        assert terms.discount_percent
    if issued.offer_type not in DISCOUNTED_TYPES:
        assert terms.discount_percent is None
    assert policy.min_valid_days <= terms.valid_days <= policy.max_valid_days
    assert issued.channel in policy.channels and issued.channel in reachable
    assert 0 < len(issued.headline) <= policy.max_headline_chars
    assert 0 < len(issued.body_copy) <= policy.max_body_chars
    assert len(issued.reasoning) <= MAX_REASONING_CHARS
    for text in (issued.headline, issued.body_copy, issued.reasoning, terms.conditions or ""):
        assert not TAG.search(text) and "<" not in text and not CONTROL.search(text)
        assert text == text.strip() and "  " not in text
    match = OFFER_CODE.match(terms.code or "")
    assert match and terms.code == offer_code(match.group(1), offer_id)
    assert OfferDraft.model_validate(issued.model_dump()) == issued
    again = judge(
        issued, policy, reachable=reachable, hints=hint, offer_id=offer_id, profile=profile, now=NOW
    )
    assert again.draft == issued
    assert_copy_agrees_with_terms(issued)


def customer():
    state = new_signals("acme", "u1")
    state.name = "Sarah Chen"
    state.page_views = {"/pricing": 3}
    state.purchase_count = 2
    state.purchase_total = Decimal("80.5")
    state.last_purchase_at = NOW - timedelta(days=45)
    return state


PERCENT = re.compile(r"(?<!\d)(\d+(?:\.\d+)?)\s*%")
FOR_DAYS = re.compile(r"\bfor\s+(\d+)[\s-]*days?\b", re.IGNORECASE)
NEVER = re.compile(
    r"evil\.example|https?:|www\.|<|>|&lt;|&gt;|script|ignore previous instructions|system:"
    r"|as your administrator",
    re.IGNORECASE,
)


def assert_copy_agrees_with_terms(issued):
    """What the copy a customer sees states agrees with the terms issued."""
    terms = issued.offer_terms
    for text in (issued.headline, issued.body_copy, terms.conditions or ""):
        for percent in PERCENT.findall(text):
            assert terms.discount_percent is not None, text
            assert Decimal(percent) == terms.discount_percent, text
        for days in FOR_DAYS.findall(text):
            assert int(days) == terms.valid_days, text
        if re.search(r"today only", text, re.IGNORECASE):
            assert terms.valid_days <= 1, text
        if re.search(r"\byear\b|365 days", text, re.IGNORECASE):
            assert terms.valid_days >= 365, text
        assert not NEVER.search(text), text
        if "2026-03-24" in text:
            assert abs(terms.valid_days - 7) <= 1, text
    for text in (issued.headline, issued.body_copy):  # the conditions' figures are terms
        if "$50" in text:
            assert "50" in (terms.conditions or ""), text


hostile_drafts = st.builds(
    OfferDraft,
    headline=hostile_texts(200),
    body_copy=hostile_texts(1000),
    offer_type=st.sampled_from(OFFER_TYPES),
    offer_terms=st.builds(
        OfferTerms,
        discount_percent=st.none() | st.sampled_from([15, 30, 95]) | st.integers(0, 100),
        code=st.none() | st.just("SARAH"),
        valid_days=st.sampled_from([1, 7, 30, 365]) | st.integers(0, 365),
        conditions=st.none() | hostile_texts(300),
    ),
    channel=st.sampled_from(CHANNELS),
    reasoning=hostile_texts(300),
)


@settings(max_examples=1000, deadline=None)
@given(hostile_drafts, policies(), hints)
def test_whatever_a_writer_returns_no_issued_copy_contradicts_its_terms(draft, policy, hint):
    """The hostile cases of issue 21 and their mixtures: an offer is issued only with copy
    that states its own terms, links nowhere, carries no markup and speaks to no model."""
    judged = judge(
        draft,
        policy,
        reachable=list(CHANNELS),
        hints=hint,
        offer_id=1,
        profile=customer(),
        now=NOW,
    )
    if judged.draft is None:
        assert judged.rejected_because
        return
    assert_copy_agrees_with_terms(judged.draft)
