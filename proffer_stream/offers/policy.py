"""Policy judges every draft, whoever wrote it. Pure.

Each check is a :class:`Verdict`: passed, corrected (what has one clear fix: a discount
too high, a channel unreachable, copy too long or with markup, a figure of the draft's
terms that policy changed) or rejected (the rest). The copy is judged like the terms
(:mod:`proffer_stream.offers.claims`): what it states agrees with the terms issued, it
links only to hosts the tenant allows, and nothing in it speaks to a model. A draft is
issued only when no check rejected it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from pydantic import Field, model_validator

from proffer_stream.core.types import StrictModel, WholeNumber
from proffer_stream.offers import claims
from proffer_stream.offers.models import (
    CHANNELS,
    OFFER_TYPES,
    CatalogBrief,
    Channel,
    OfferDraft,
    OfferTerms,
    OfferType,
    Verdict,
)
from proffer_stream.offers.rules import MAX_HOURS, WriterHints
from proffer_stream.signals.models import CustomerProfile

MAX_REASONING_CHARS = 2000
MAX_CONDITIONS_CHARS = 500
DISCOUNTED_TYPES: frozenset[OfferType] = frozenset({"discount", "upgrade"})
"""The offer types that may carry a discount percent; the others (a free trial, free
shipping, ...) give what they name, and a percent on them is taken off."""

CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
"""Crockford's base 32: no I, L, O or U, so a code read aloud is not misread."""
OFFER_CODE = re.compile(r"^([A-Z0-9]{1,12})-([0-9A-HJKMNP-TV-Z]{6})$")
"""What :func:`offer_code` makes: a prefix, a dash and six base-32 characters."""
_SUFFIX_BITS = 30
_SUFFIX_MASK = (1 << _SUFFIX_BITS) - 1

_CONTROL = re.compile(
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff\ud800-\udfff]"
)
"""Control characters (not tabs and newlines), bidi overrides and lone surrogates."""
_TAG = re.compile(r"<[^>]*>")
_ANGLE = re.compile(r"[<>]")
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_HEADER = re.compile(r"^[ \t]*#{1,6}(?=[ \t]|$)", re.MULTILINE)
_EMPHASIS = re.compile(r"[*`]+|~~+|(?<![A-Za-z0-9])_+|_+(?![A-Za-z0-9])")
_MARKUP_OR_CONTROL = re.compile(_CONTROL.pattern[:-1] + r"<>\[#*`~_&]")
"""A character one of the patterns above needs (or an escape, ``&lt;``, that makes one):
text without any is only spaced out."""

LinkHost = Annotated[
    str,
    Field(
        max_length=253,
        pattern=r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$",
    ),
]
"""A host name in lower case, e.g. ``shop.example.com``."""


class Policy(StrictModel):
    """A tenant's limits on what any writer may issue.

    Numbers and booleans are strict: ``true`` is not a number nor ``"10"`` one, each a
    422 naming the field rather than a cap of 1% or 10."""

    max_discount_percent: WholeNumber = Field(30, ge=0, le=100, strict=True)
    min_valid_days: WholeNumber = Field(1, ge=0, le=365, strict=True)
    max_valid_days: WholeNumber = Field(30, ge=0, le=365, strict=True)
    offer_types: list[OfferType] = Field(default_factory=lambda: list(OFFER_TYPES), min_length=1)
    channels: list[Channel] = Field(default_factory=lambda: list(CHANNELS), min_length=1)
    max_headline_chars: WholeNumber = Field(120, ge=10, le=500, strict=True)
    max_body_chars: WholeNumber = Field(1000, ge=10, le=5000, strict=True)
    auto_approve: bool = Field(
        False,
        strict=True,
        description="Approve every offer that passed policy at once, without review.",
    )
    redeem_approved: bool = Field(
        False, strict=True, description="Let an approved offer be redeemed before it is sent."
    )
    offer_cooldown_hours: float = Field(24, ge=0, le=MAX_HOURS, allow_inf_nan=False, strict=True)
    link_hosts: list[LinkHost] = Field(
        default_factory=list,
        max_length=50,
        description="Hosts offer copy may link to (each with its subdomains); none by default.",
    )

    @model_validator(mode="after")
    def _days_in_order(self) -> Policy:
        if self.min_valid_days > self.max_valid_days:
            raise ValueError("min_valid_days must not be above max_valid_days")
        return self


@dataclass(frozen=True)
class Judgement:
    """The draft as it may be issued (None: rejected), every verdict, and why rejected."""

    draft: OfferDraft | None
    verdicts: list[Verdict]
    rejected_because: list[str]


def reachable_channels(signals: CustomerProfile) -> list[Channel]:
    """The channels this customer can be reached on: in_app always, the others when known."""
    channels: list[Channel] = []
    if signals.email:
        channels.append("email")
    if _filled(signals.metadata.get("phone")):
        channels.append("sms")
    if _filled(signals.metadata.get("push_token")):
        channels.append("push")
    channels.append("in_app")
    return channels


def _filled(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def code_prefix(text: str) -> str:
    """The part of an offer code before the dash: A-Z and 0-9 of ``text``, at most 12."""
    return "".join(c for c in text.upper() if "A" <= c <= "Z" or "0" <= c <= "9")[:12]


def offer_code(prefix: str, offer_id: int) -> str:
    """An offer's code, e.g. ``SARAH-7KQ2MX``: unique per offer id within a tenant.

    The suffix is a bijective mix of the id's low 30 bits in base 32, so any 2^30
    consecutive ids have distinct codes; two arbitrary ids share a suffix with odds of
    1 in 2^30 (about 1 in a billion), only when their ids differ by a multiple of 2^30.
    Not a secret: it only tells offers apart.
    """
    mixed = _mix30(offer_id & _SUFFIX_MASK)
    suffix = "".join(CODE_ALPHABET[(mixed >> shift) & 31] for shift in range(25, -1, -5))
    return f"{code_prefix(prefix) or 'OFFER'}-{suffix}"


def catalog_code(pattern: str, offer_id: int) -> str:
    """An offer's code from its catalog offer's ``code_pattern``: each ``#`` a character
    of the offer's id (mixed, as :func:`offer_code`), e.g. ``SPRING-7KQ2``."""
    mixed = _mix30(offer_id & _SUFFIX_MASK) | (offer_id >> _SUFFIX_BITS) << _SUFFIX_BITS
    chars = []
    for c in pattern:
        if c == "#":
            chars.append(CODE_ALPHABET[mixed & 31])
            mixed >>= 5
        else:
            chars.append(c)
    return "".join(chars)


def _mix30(value: int) -> int:
    """A bijection of 30-bit numbers (xor-shifts and odd multipliers), scattering neighbours."""
    value ^= value >> 15
    value = (value * 0x2C1B3C6D) & _SUFFIX_MASK
    value ^= value >> 13
    value = (value * 0x297A2D39) & _SUFFIX_MASK
    return value ^ (value >> 16)


def clean_text(text: str, max_chars: int) -> str:
    """Plain text: no tags, markdown or control characters, spaces collapsed, at most
    ``max_chars`` long (cut at a word boundary, ending in "…")."""
    return _shorten(_plain(text), max_chars)


def _plain(text: str) -> str:
    """Strip until nothing changes: removing markup can reveal more (``[[a](b)](c)``)."""
    if _MARKUP_OR_CONTROL.search(text) is None:  # most copy: one scan, not six passes
        return " ".join(text.split())
    while True:
        plain = _strip_once(text)
        if plain == text:
            return plain
        text = plain


def _strip_once(text: str) -> str:
    text = _TAG.sub(" ", _CONTROL.sub("", claims.unescape(text)))
    text = _LINK.sub(r"\1", _ANGLE.sub("", text))
    text = _EMPHASIS.sub("", _HEADER.sub("", text))
    return " ".join(text.split())


def _shorten(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    cut = text[: max_chars - 1]
    space = cut.rfind(" ")
    if space > max_chars // 2:
        cut = cut[:space]
    return (cut.rstrip(" ,.;:-_") or cut) + "…"


def judge(
    draft: OfferDraft,
    policy: Policy,
    *,
    reachable: Sequence[Channel],
    hints: WriterHints | None,
    offer_id: int,
    profile: CustomerProfile,
    now: datetime,
    brief: CatalogBrief | None = None,
) -> Judgement:
    """Check ``draft`` against ``policy`` (and the rule's ``hints``); ``draft`` is not changed.

    ``profile`` and ``now``: the customer's figures and the time of the offer, which the
    copy may state besides the terms (a cart total, days since a purchase, the expiry date).
    ``brief``: the catalog offer the draft was written for; its terms are bounds too (the
    most discount, the longest validity, the channels, the code's pattern), and its text
    is the business's, whose figures the copy may repeat.
    """
    terms = draft.offer_terms
    type_verdict = _offer_type(draft.offer_type, policy, hints)
    discount, discount_verdict = _discount(
        draft.offer_type, terms.discount_percent, policy, hints, brief
    )
    days, days_verdict = _valid_days(terms.valid_days, policy, brief)
    channel, channel_verdict = _channel(draft.channel, policy, reachable, hints, brief)
    code, code_verdict = _code(terms.code, draft.offer_type, offer_id, brief)
    review = _CopyReview(
        claims.CopyFacts(
            offer_type=draft.offer_type,
            percent=discount,
            drafted_percent=terms.discount_percent,
            valid_days=days,
            drafted_days=terms.valid_days,
            profile=profile,
            now=now,
        ),
        policy.link_hosts,
    )
    conditions, conditions_verdict = _text(
        "conditions", terms.conditions or "", MAX_CONDITIONS_CHARS, required=False, review=review
    )
    # Figures of the conditions (and the catalog offer's text) are terms the copy may repeat.
    review.facts.conditions = " ".join([conditions, *_catalog_text(brief)])
    review.clear({"headline": _plain(draft.headline), "body_copy": _plain(draft.body_copy)})
    headline, headline_verdict = _text(
        "headline", draft.headline, policy.max_headline_chars, review=review
    )
    body, body_verdict = _text("body_copy", draft.body_copy, policy.max_body_chars, review=review)
    reasoning, reasoning_verdict = _text(
        "reasoning", draft.reasoning, MAX_REASONING_CHARS, required=False
    )
    verdicts = [
        type_verdict,
        discount_verdict,
        days_verdict,
        channel_verdict,
        code_verdict,
        headline_verdict,
        body_verdict,
        conditions_verdict,
        reasoning_verdict,
        *review.verdicts(),
    ]
    rejected = [f"{v.check}: {v.detail}" for v in verdicts if v.outcome == "rejected"]
    if rejected:
        return Judgement(None, verdicts, rejected)
    issued = OfferDraft(
        headline=headline,
        body_copy=body,
        offer_type=draft.offer_type,
        offer_terms=OfferTerms(
            discount_percent=discount, code=code, valid_days=days, conditions=conditions or None
        ),
        channel=channel,
        reasoning=reasoning,
    )
    return Judgement(issued, verdicts, [])


class _CopyReview:
    """The copy's checks beyond markup and length, gathered over the texts a customer sees
    (headline, body, conditions) into three verdicts: ``copy_terms`` (what the copy states
    agrees with the terms), ``links`` (only to hosts the policy allows), ``instructions``
    (nothing that speaks to a model or claims authority)."""

    def __init__(self, facts: claims.CopyFacts, link_hosts: Sequence[str]) -> None:
        self.facts = facts
        self.link_hosts = link_hosts
        self.corrected: list[str] = []
        self.contradictions: list[str] = []
        self.links: dict[str, None] = {}
        self.instructions: list[str] = []
        self.cleared: dict[str, str] = {}

    def clear(self, plain: dict[str, str]) -> None:
        """Scan the plain texts together, once: when nothing in them needs a closer look
        (the common case), each passes without scans of its own (a third of the time)."""
        joined = "\x00".join(plain.values())  # no figure or link spans a NUL
        low = claims.lower(joined)
        if claims.links(joined, self.link_hosts, low) or claims.addresses_model(joined, low):
            return
        if claims.agrees_at_a_glance(low, self.facts):
            self.cleared = plain

    def raw(self, check: str, unescaped: str, low: str | None = None) -> None:
        """Links in ``unescaped``; before cleaning, also those cleaning hides (in a tag's
        attribute, a markdown link)."""
        found = claims.links(unescaped, self.link_hosts, low)
        self.links.update(dict.fromkeys(f"{check}: {p}" for p in found))

    def plain(self, check: str, text: str) -> str:
        """``text`` (plain) with the draft's terms corrected; its problems noted."""
        if self.cleared.get(check) == text:
            return text
        low = claims.lower(text)
        self.raw(check, text, low)
        said = claims.addresses_model(text, low)
        if said is not None:
            self.instructions.append(f"{check}: {said!r}")
        corrected, fixes, problems = claims.check_figures(
            text, self.facts, terms_only=check == "conditions", low=low
        )
        self.corrected += [f"{check}: {fix}" for fix in fixes]
        self.contradictions += [f"{check}: {problem}" for problem in problems]
        return corrected

    def shortened(self, check: str, text: str) -> None:
        """Whether shortening cut a figure into one that no longer agrees."""
        _, _, problems = claims.check_figures(text, self.facts, terms_only=check == "conditions")
        self.contradictions += [f"{check} (shortened): {problem}" for problem in problems]

    def verdicts(self) -> list[Verdict]:
        if self.contradictions:
            terms = Verdict(
                check="copy_terms", outcome="rejected", detail="; ".join(self.contradictions)
            )
        elif self.corrected:
            terms = Verdict(
                check="copy_terms", outcome="corrected", detail="; ".join(self.corrected)
            )
        else:
            terms = _passed("copy_terms")
        links = (
            Verdict(check="links", outcome="rejected", detail="; ".join(self.links))
            if self.links
            else _passed("links")
        )
        instructions = (
            Verdict(
                check="instructions",
                outcome="rejected",
                detail="speaks to a model or claims authority: " + "; ".join(self.instructions),
            )
            if self.instructions
            else _passed("instructions")
        )
        return [terms, links, instructions]


@functools.cache
def _passed(check: str) -> Verdict:
    """The verdict of a check passed: one shared instance per check (most checks of
    most drafts pass; building them was a tenth of the offers agent's time)."""
    return Verdict(check=check, outcome="passed")


def _offer_type(offer_type: OfferType, policy: Policy, hints: WriterHints | None) -> Verdict:
    if offer_type not in policy.offer_types:
        allowed = ", ".join(policy.offer_types)
        detail = f"{offer_type} offers are not allowed by policy (allowed: {allowed})"
        return Verdict(check="offer_type", outcome="rejected", detail=detail)
    if hints is not None and hints.offer_types and offer_type not in hints.offer_types:
        allowed = ", ".join(hints.offer_types)
        detail = f"{offer_type} offers are not what the rule asks for ({allowed})"
        return Verdict(check="offer_type", outcome="rejected", detail=detail)
    return _passed("offer_type")


def _catalog_text(brief: CatalogBrief | None) -> list[str]:
    if brief is None:
        return []
    return [text for text in (brief.name, brief.description, brief.conditions) if text]


def _discount(
    offer_type: OfferType,
    percent: int | None,
    policy: Policy,
    hints: WriterHints | None,
    brief: CatalogBrief | None,
) -> tuple[int | None, Verdict]:
    if percent is not None and offer_type not in DISCOUNTED_TYPES:
        detail = f"{percent}% taken off: {offer_type} offers carry no discount"
        return None, Verdict(check="discount", outcome="corrected", detail=detail)
    if percent is not None and brief is not None and brief.discount_percent is None:
        detail = f"{percent}% taken off: the catalog offer gives no discount percent"
        percent = None
        if offer_type != "discount":
            return None, Verdict(check="discount", outcome="corrected", detail=detail)
    most = policy.max_discount_percent
    if hints is not None and hints.max_discount_percent is not None:
        most = min(most, hints.max_discount_percent)
    if brief is not None and brief.discount_percent is not None:
        most = min(most, brief.discount_percent)
    allowed = percent if percent is None else min(percent, most)
    if offer_type == "discount" and not allowed:
        detail = (
            "a discount offer without a discount percent"
            if not percent
            else f"a discount offer, but at most {most}% discount is allowed"
        )
        return allowed, Verdict(check="discount", outcome="rejected", detail=detail)
    if allowed != percent:
        detail = f"{percent}% lowered to {allowed}%, the most allowed"
        return allowed, Verdict(check="discount", outcome="corrected", detail=detail)
    return allowed, _passed("discount")


def _valid_days(days: int, policy: Policy, brief: CatalogBrief | None) -> tuple[int, Verdict]:
    longest = policy.max_valid_days
    if brief is not None and brief.valid_days is not None:
        longest = min(longest, brief.valid_days)
    shortest = min(policy.min_valid_days, longest)
    bounded = min(max(days, shortest), longest)
    if bounded == days:
        return days, _passed("valid_days")
    detail = f"{days} days changed to {bounded}, within the {shortest} to {longest} days allowed"
    return bounded, Verdict(check="valid_days", outcome="corrected", detail=detail)


def _channel(
    channel: Channel,
    policy: Policy,
    reachable: Sequence[Channel],
    hints: WriterHints | None,
    brief: CatalogBrief | None,
) -> tuple[Channel, Verdict]:
    only = brief.channels if brief is not None else []
    allowed = [c for c in policy.channels if not only or c in only]
    usable = [c for c in reachable if c in allowed]
    if channel in usable:
        return channel, _passed("channel")
    if not usable:
        detail = "no channel the policy (and the catalog offer) allows reaches this customer"
        return channel, Verdict(check="channel", outcome="rejected", detail=detail)
    preferred = hints.channel if hints is not None else None
    chosen = preferred if preferred in usable and preferred is not None else usable[0]
    why = "is not allowed" if channel not in allowed else "does not reach them"
    detail = f"{channel} {why}; {chosen} instead"
    return chosen, Verdict(check="channel", outcome="corrected", detail=detail)


def _code(
    given: str | None, offer_type: OfferType, offer_id: int, brief: CatalogBrief | None
) -> tuple[str, Verdict]:
    if brief is not None and brief.code_pattern:
        code = catalog_code(brief.code_pattern, offer_id)
    else:
        made = OFFER_CODE.match(given) if given else None
        code = offer_code(made.group(1) if made else given or offer_type, offer_id)
    if code == given:
        return code, _passed("code")
    return code, Verdict(check="code", outcome="corrected", detail=f"code set to {code}")


def _text(
    check: str, text: str, most: int, *, required: bool = True, review: _CopyReview | None = None
) -> tuple[str, Verdict]:
    """``text`` as plain text of at most ``most`` characters; with ``review`` (copy a
    customer sees), also judged like the terms, and rejected for markup that runs code."""
    if review is not None:
        unescaped = claims.unescape(text)
        active = claims.active_markup(unescaped)
        if active is not None:
            detail = f"markup that runs code or changes the page ({active!r})"
            return "", Verdict(check=check, outcome="rejected", detail=detail)
    plain = _plain(text)
    if review is not None and plain != unescaped:  # else the plain text's scan is the same
        review.raw(check, unescaped)
    if required and not plain:
        detail = "empty once markup and control characters are removed"
        return plain, Verdict(check=check, outcome="rejected", detail=detail)
    stated = plain if review is None else review.plain(check, plain)
    short = _shorten(stated, most)
    if review is not None and short != stated:
        review.shortened(check, short)
    changes = []
    if plain != text:
        changes.append("markup, control characters or extra spaces removed")
    if short != stated:
        changes.append(f"shortened to at most {most} characters")
    if not changes:
        return short, _passed(check)
    return short, Verdict(check=check, outcome="corrected", detail="; ".join(changes))
