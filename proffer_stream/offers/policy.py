"""Policy judges every draft, whoever wrote it: it corrects what has one clear fix and
rejects the rest, and records each verdict. Pure."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import Field, model_validator

from proffer_stream.core.types import StrictModel
from proffer_stream.offers.models import (
    CHANNELS,
    OFFER_TYPES,
    Channel,
    OfferDraft,
    OfferType,
    Verdict,
)
from proffer_stream.offers.rules import WriterHints
from proffer_stream.signals.models import CustomerSignals

_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # 32 symbols, no 0/O or 1/I
_MARKUP = re.compile(r"<[^>]*>|\[([^\]]*)\]\([^)]*\)|[*_`#~]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_REASONING_CHARS = 2000


class Policy(StrictModel):
    """A tenant's limits on what any writer may issue."""

    max_discount_percent: int = Field(30, ge=0, le=100)
    min_valid_days: int = Field(1, ge=1, le=365)
    max_valid_days: int = Field(30, ge=1, le=365)
    offer_types: list[OfferType] = Field(default_factory=lambda: list(OFFER_TYPES), min_length=1)
    channels: list[Channel] = Field(default_factory=lambda: list(CHANNELS), min_length=1)
    max_headline_chars: int = Field(120, ge=10, le=500)
    max_body_chars: int = Field(1000, ge=20, le=5000)
    auto_approve: bool = False
    offer_cooldown_hours: float = Field(24, ge=0)

    @model_validator(mode="after")
    def _bounds_in_order(self) -> Policy:
        if self.min_valid_days > self.max_valid_days:
            raise ValueError("min_valid_days is above max_valid_days")
        return self


@dataclass(frozen=True)
class Judgement:
    """The draft as it may be issued (None: rejected), every verdict, and why rejected."""

    draft: OfferDraft | None
    verdicts: list[Verdict]
    rejected_because: list[str]


def reachable_channels(signals: CustomerSignals) -> list[Channel]:
    """The channels we can reach this customer on: in_app always, others when known."""
    channels: list[Channel] = []
    if signals.email:
        channels.append("email")
    if _filled(signals.metadata.get("phone")):
        channels.append("sms")
    if _filled(signals.metadata.get("push_token")):
        channels.append("push")
    channels.append("in_app")
    return channels


def offer_code(prefix: str, offer_id: int) -> str:
    """A code unique per offer id within a tenant, by construction.

    The suffix is the low 30 bits of a bijective mix of the id in base 32: ids that
    differ in those bits never share a code; others collide with odds 1 in 2^30.
    """
    cleaned = re.sub(r"[^A-Z0-9]", "", prefix.upper())[:12] or "OFFER"
    mixed = (offer_id * 0x9E3779B97F4A7C15) & ((1 << 64) - 1)
    mixed ^= mixed >> 29
    suffix = "".join(_CODE_ALPHABET[(mixed >> (5 * i)) & 31] for i in range(6))
    return f"{cleaned}-{suffix}"


def judge(
    draft: OfferDraft,
    policy: Policy,
    *,
    reachable: Sequence[Channel],
    hints: WriterHints | None,
    offer_id: int,
) -> Judgement:
    """Every check on ``draft``; the input is not changed."""
    out = draft.model_copy(deep=True)
    verdicts = [
        _offer_type(out, policy, hints),
        _discount(out, policy, hints),
        _valid_days(out, policy),
        _channel(out, policy, reachable, hints),
        _code(out, offer_id),
        _text(out, "headline", policy.max_headline_chars),
        _text(out, "body_copy", policy.max_body_chars),
        _text(out, "reasoning", MAX_REASONING_CHARS),
    ]
    rejected = [f"{v.check}: {v.detail}" for v in verdicts if v.outcome == "rejected"]
    return Judgement(None if rejected else out, verdicts, rejected)


def _offer_type(draft: OfferDraft, policy: Policy, hints: WriterHints | None) -> Verdict:
    allowed = [
        t
        for t in policy.offer_types
        if not hints or not hints.offer_types or t in hints.offer_types
    ]
    if draft.offer_type in allowed:
        return Verdict(check="offer_type", outcome="passed")
    return Verdict(
        check="offer_type",
        outcome="rejected",
        detail=f"{draft.offer_type} is not allowed (allowed: {', '.join(allowed) or 'none'})",
    )


def _discount(draft: OfferDraft, policy: Policy, hints: WriterHints | None) -> Verdict:
    terms = draft.offer_terms
    if draft.offer_type == "discount" and not terms.discount_percent:
        return Verdict(check="discount", outcome="rejected", detail="a discount without a percent")
    most = policy.max_discount_percent
    if hints and hints.max_discount_percent is not None:
        most = min(most, hints.max_discount_percent)
    if terms.discount_percent is not None and terms.discount_percent > most:
        detail = f"{terms.discount_percent}% lowered to the most allowed, {most}%"
        terms.discount_percent = most
        return Verdict(check="discount", outcome="corrected", detail=detail)
    return Verdict(check="discount", outcome="passed")


def _valid_days(draft: OfferDraft, policy: Policy) -> Verdict:
    days = draft.offer_terms.valid_days
    bounded = min(max(days, policy.min_valid_days), policy.max_valid_days)
    if bounded == days:
        return Verdict(check="valid_days", outcome="passed")
    draft.offer_terms.valid_days = bounded
    return Verdict(
        check="valid_days",
        outcome="corrected",
        detail=f"{days} days brought within {policy.min_valid_days}-{policy.max_valid_days}",
    )


def _channel(
    draft: OfferDraft, policy: Policy, reachable: Sequence[Channel], hints: WriterHints | None
) -> Verdict:
    usable = [c for c in reachable if c in policy.channels]
    if draft.channel in usable:
        return Verdict(check="channel", outcome="passed")
    if not usable:
        return Verdict(check="channel", outcome="rejected", detail="no reachable channel allowed")
    preferred = hints.channel if hints and hints.channel in usable else None
    chosen = preferred or usable[0]
    detail = f"{draft.channel} is not reachable or not allowed; {chosen} instead"
    draft.channel = chosen
    return Verdict(check="channel", outcome="corrected", detail=detail)


def _code(draft: OfferDraft, offer_id: int) -> Verdict:
    given = draft.offer_terms.code
    code = offer_code(given.split("-")[0] if given else draft.offer_type, offer_id)
    draft.offer_terms.code = code
    if given == code:
        return Verdict(check="code", outcome="passed")
    return Verdict(check="code", outcome="corrected", detail=f"code set to {code}, unique")


def _text(draft: OfferDraft, field: str, most: int) -> Verdict:
    original: str = getattr(draft, field)
    cleaned = " ".join(_CONTROL.sub(" ", _MARKUP.sub(r"\1", original)).split())
    if not cleaned:
        return Verdict(check=field, outcome="rejected", detail="empty once markup is removed")
    if len(cleaned) > most:
        cleaned = cleaned[: most - 1].rsplit(" ", 1)[0].rstrip(" ,.;:") + "…"
    setattr(draft, field, cleaned)
    if cleaned == original:
        return Verdict(check=field, outcome="passed")
    return Verdict(check=field, outcome="corrected", detail="markup or length corrected")


def _filled(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())
