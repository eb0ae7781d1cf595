"""The owner's decisions: pure functions from (state, command) to (state, event).

One owner per tenant + catalog offer applies these in the order its commands arrive,
so stock, per-member uses and grants and periodic usage are never decided by a check
and a write that another request can race. Time is the command's ``issued_at``: a
command decided again after a crash (at-least-once) is decided the same way.

Grants hold stock until they are used or can no longer be: a grant that can end (the
offer's ``usable_in_seconds_after_granting``) carries its deadline, and its unit of
stock sits in a bucket of reservations
that end together (:func:`holds_until`). Before deciding any command, the owner
releases every bucket whose whole span has passed at the command's ``issued_at``
(:func:`release`), and settles the member's own grants that ended (:func:`_settle`):
lazily, with no timer, and the same way when decided again. A bucket ends after each
of its grants' deadlines, so a unit is never released while its grant may still be
used (that would oversell); it may be released a little late, which is safe. A grant
that issued a generated offer is given back by a ``release`` command from the offers
agent once that offer expired unredeemed (:func:`_release`): only that domain knows
whether a redemption came first.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import Field

from proffer_stream.catalog.models import (
    GRANTED_TYPES,
    MAX_PERIODIC_LIMIT,
    UNUSABLE_TYPES,
    CatalogDefinition,
    CatalogEvent,
    CatalogEventKind,
    CatalogOfferFields,
    CatalogTerms,
    CollectionDefinition,
    CollectionFields,
    DefinitionCommand,
    DefinitionTarget,
    HeldGrant,
    IntegrationDefinition,
    IntegrationFields,
    MemberCommand,
    MemberCounts,
    OfferCounts,
    RefusalReason,
    Reservation,
    Use,
    held_grants,
    within,
)
from proffer_stream.catalog.periods import period
from proffer_stream.core.types import StrictModel, UtcDatetime

KEPT_USE_TIMES = MAX_PERIODIC_LIMIT
"""Most use times a member's state keeps for periodic limits (a year of daily uses):
enough for the highest limit a definition may have."""
KEPT_TOKENS = 100
"""Most used encoded-token ids a member's state keeps."""
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
KEPT_HELD = 100
"""Most unused grants a member's state keeps when ``maximum_grants_per_user`` does not
bound them; an older one is released as a newer one is made."""
RELEASE_SLACK = 32
"""A reservation's bucket is at most 1/RELEASE_SLACK of its grant's time wide (at least
a second): a unit is released at most ~3% of that time after its grant ended."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class OfferState(StrictModel):
    """The owner's state of one catalog offer (or collection, or integration): its
    definition and counts."""

    offer: CatalogDefinition | None = None
    collection: CollectionDefinition | None = None
    integration: IntegrationDefinition | None = None
    counts: OfferCounts = Field(default_factory=OfferCounts)
    seq: int = 0
    reservations: list[Reservation] = Field(
        default_factory=list,
        description="The units of counts.reserved_count whose grants can end, by the end"
        " of their bucket, earliest first; the rest are held until used.",
    )
    released_through: UtcDatetime | None = Field(
        None,
        description="The latest issued_at decided: every bucket ending by then was released.",
    )

    def definition(
        self, target: DefinitionTarget
    ) -> CatalogDefinition | CollectionDefinition | IntegrationDefinition | None:
        """The definition held of ``target``'s kind."""
        held: CatalogDefinition | CollectionDefinition | IntegrationDefinition | None = getattr(
            self, target
        )
        return held


class MemberState(StrictModel):
    """The owner's state of one member of one catalog offer."""

    counts: MemberCounts = Field(default_factory=MemberCounts)
    use_times: list[UtcDatetime] = Field(default_factory=list)
    used_tokens: list[str] = Field(default_factory=list)


class Refused(Exception):
    """A command the owner refuses: why, in words, and when a period resets."""

    def __init__(
        self, reason: RefusalReason, message: str, resets_at: datetime | None = None
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.resets_at = resets_at


def decide_definition(
    state: OfferState, command: DefinitionCommand
) -> tuple[OfferState, CatalogEvent]:
    """Apply a create, update or archive if ``command.base_version`` is in force."""
    state = release(state, command.issued_at)
    current = state.definition(command.target)
    version = current.version if current is not None else 0
    seq = state.seq + 1
    if command.base_version != version or (command.action != "create" and current is None):
        reason = (
            "the offer does not exist"
            if current is None and command.action != "create"
            else f"version {version} is in force, not {command.base_version}"
        )
        refused = state.model_copy(update={"seq": seq})
        return refused, _event(command, refused, "refused", "version_conflict", reason, version)
    now = command.issued_at
    common: dict[str, Any] = {
        "id": command.id,
        "tenant_id": command.tenant_id,
        "version": version + 1,
        "created_at": current.created_at if current is not None else now,
        "updated_at": now,
        "archived_at": now
        if command.action == "archive"
        else getattr(current, "archived_at", None),
        "command_id": command.command_id,
    }
    fields_kind, definition_kind = _DEFINITION_KINDS[command.target]
    given = getattr(command, command.target)
    fields = _fields(given, current, fields_kind)
    definition = definition_kind.model_validate({**fields, **common})
    new = state.model_copy(update={command.target: definition, "seq": seq})
    return new, _event(command, new, "defined", None, None, version + 1)


_DEFINITION_KINDS: dict[DefinitionTarget, tuple[type[StrictModel], type[StrictModel]]] = {
    "offer": (CatalogOfferFields, CatalogDefinition),
    "collection": (CollectionFields, CollectionDefinition),
    "integration": (IntegrationFields, IntegrationDefinition),
}
"""Each target's writable fields and its definition."""


def _fields(
    given: StrictModel | None, current: StrictModel | None, kind: type[StrictModel]
) -> dict[str, Any]:
    """The writable fields of the new version: those given, else (archive) the current."""
    source = given if given is not None else current
    assert source is not None  # an archive of nothing was refused as a version conflict
    return source.model_dump(include=set(kind.model_fields))


def decide_member(
    state: OfferState, member: MemberState, command: MemberCommand
) -> tuple[OfferState, MemberState, CatalogEvent]:
    """Decide a member's grant, use, like, unlike, seen or click of the catalog offer,
    after releasing the reservations that ended by its ``issued_at`` (refused or not)."""
    seq = state.seq + 1
    state = release(state, command.issued_at)
    state, member = _settle(state, member, command.issued_at)
    use: Use | None = None
    try:
        if command.action == "release":  # whatever became of the offer since
            decided, mine = _release(state, member, command)
        elif command.action == "grant":
            decided, mine = _grant(_live(state.offer, command), state, member, command)
        elif command.action == "use":
            decided, mine, use = _use(_live(state.offer, command), state, member, command)
        else:
            _live(state.offer, command)
            counts, mine = _react(state.counts, member, command)
            decided = state.model_copy(update={"counts": counts})
    except Refused as refusal:
        if command.action == "use" and command.for_offer_id is not None:
            # The generated offer was redeemed, so its grant will never be used: give it back.
            state, member = _release(state, member, command)
        counts = state.counts.model_copy(update={"refusals_count": state.counts.refusals_count + 1})
        new = state.model_copy(update={"counts": counts, "seq": seq})
        event = _member_event(command, new, member, "refused", None).model_copy(
            update={
                "reason": refusal.reason,
                "message": refusal.message,
                "resets_at": refusal.resets_at,
            }
        )
        return new, member, event
    new = decided.model_copy(update={"seq": seq})
    return new, mine, _member_event(command, new, mine, _KINDS[command.action], use)


_KINDS: dict[str, CatalogEventKind] = {
    "grant": "granted",
    "use": "used",
    "like": "liked",
    "unlike": "unliked",
    "seen": "seen",
    "clicked": "clicked",
    "release": "released",
}


def holds_until(granted_at: datetime, usable_until: datetime) -> datetime:
    """The end of the bucket whose reservation a grant usable until ``usable_until``
    holds: ``usable_until`` rounded up to a multiple (since the epoch) of the largest
    power of two seconds no wider than 1/:data:`RELEASE_SLACK` of the grant's time (at
    least a second). Grants that end close together share a bucket, so an offer keeps
    about 65 buckets per such width at most, whatever its stock; and a bucket ends after
    each of its grants did. Held grants name its results: changing it needs a migration
    of the buckets."""
    span = max(usable_until - granted_at, timedelta(0))
    width = timedelta(seconds=1)
    while width * 2 * RELEASE_SLACK <= span:
        width *= 2
    ticks = (usable_until - _EPOCH) // _MICROSECOND
    step = width // _MICROSECOND
    return _EPOCH + _MICROSECOND * (-(-ticks // step) * step)


def release(state: OfferState, now: datetime) -> OfferState:
    """``state`` with every bucket of reservations that ended by ``now`` released (or by
    an earlier command's time: once released, always released, whatever the order of
    the commands' times)."""
    through = now if state.released_through is None else max(state.released_through, now)
    if through == state.released_through:
        return state  # the buckets that end by then went when it was reached
    due = sum(r.count for r in state.reservations if r.holds_until <= through)
    counts = state.counts.model_copy(
        update={
            "reserved_count": state.counts.reserved_count - due,
            "released_count": state.counts.released_count + due,
        }
    )
    kept = [r for r in state.reservations if r.holds_until > through]
    return state.model_copy(
        update={"reservations": kept, "released_through": through, "counts": counts}
    )


def _settle(
    state: OfferState, member: MemberState, now: datetime
) -> tuple[OfferState, MemberState]:
    """The member's grants that still hold a unit: those released with their bucket are
    forgotten, and those that ended by ``now`` release their unit now (their bucket
    loses it, so it is never released twice)."""
    through = state.released_through
    kept: list[HeldGrant] = []
    seconds = state.offer.usable_in_seconds_after_granting if state.offer else None
    for grant in held_grants(member.counts, seconds):  # (the unit of one kept before
        # held grants were is not in a bucket)
        if grant.holds_until is not None and through is not None and grant.holds_until <= through:
            continue  # released with its bucket
        if grant.usable_until is not None and grant.usable_until <= now:
            state = _given_back(state, grant)
            continue
        kept.append(grant)
    if kept == member.counts.held:
        return state, member
    counts = member.counts.model_copy(update={"held": kept})
    return state, member.model_copy(update={"counts": counts})


def _reserve(state: OfferState, until: datetime | None) -> OfferState:
    """``state`` holding one more unit, in the bucket ending ``until`` (None: unbucketed)."""
    counts = state.counts.model_copy(update={"reserved_count": state.counts.reserved_count + 1})
    reservations = list(state.reservations)
    if until is not None:
        at = next((i for i, r in enumerate(reservations) if r.holds_until >= until), None)
        if at is None:
            reservations.append(Reservation(holds_until=until, count=1))
        elif reservations[at].holds_until == until:
            reservations[at] = Reservation(holds_until=until, count=reservations[at].count + 1)
        else:
            reservations.insert(at, Reservation(holds_until=until, count=1))
    return state.model_copy(update={"counts": counts, "reservations": reservations})


def _unreserve(state: OfferState, grant: HeldGrant) -> tuple[OfferState, bool]:
    """``state`` without the unit ``grant`` holds, and whether it still held one."""
    reservations = list(state.reservations)
    if grant.holds_until is None:
        unbucketed = state.counts.reserved_count - sum(r.count for r in reservations)
        if unbucketed <= 0:
            return state, False
    else:
        at = next(
            (i for i, r in enumerate(reservations) if r.holds_until == grant.holds_until), None
        )
        if at is None:
            return state, False
        bucket = reservations[at]
        if bucket.count == 1:
            del reservations[at]
        else:
            reservations[at] = bucket.model_copy(update={"count": bucket.count - 1})
    counts = state.counts.model_copy(update={"reserved_count": state.counts.reserved_count - 1})
    return state.model_copy(update={"counts": counts, "reservations": reservations}), True


def _given_back(state: OfferState, grant: HeldGrant) -> OfferState:
    """``state`` without the unit ``grant`` holds, counted as released unused (nothing,
    if it held none any more)."""
    state, freed = _unreserve(state, grant)
    if not freed:
        return state
    released = state.counts.released_count + 1
    return state.model_copy(
        update={"counts": state.counts.model_copy(update={"released_count": released})}
    )


def _live(offer: CatalogDefinition | None, command: MemberCommand) -> CatalogDefinition:
    """The offer, if members can act on it at all."""
    if offer is None:
        raise Refused("unknown_offer", f"no catalog offer {command.offer_id}")
    if offer.archived_at is not None:
        raise Refused("archived", "the offer is archived")
    if offer.status != "published":
        raise Refused("not_published", f"the offer is {offer.status}, not published")
    if not command.in_audience and command.action in ("grant", "use"):
        raise Refused("not_in_audience", "the member is not in the offer's audience")
    return offer


def grant_ends(offer: CatalogDefinition, command: MemberCommand) -> datetime | None:
    """Until when a grant decided now may be used: the offer's
    ``usable_in_seconds_after_granting`` after it, if it says. (A generated offer's
    grant is not ended by the offer's expiry here: a redemption the offers domain
    accepted before the expiry can reach the owner after it; that domain sends a
    ``release`` once the offer expired unredeemed.)"""
    seconds = offer.usable_in_seconds_after_granting
    return None if seconds is None else command.issued_at + timedelta(seconds=seconds)


def _grant(
    offer: CatalogDefinition, state: OfferState, member: MemberState, command: MemberCommand
) -> tuple[OfferState, MemberState]:
    now = command.issued_at
    counts = state.counts
    if offer.usable_until is not None and now >= offer.usable_until:
        raise Refused("usable_window_closed", f"the offer was usable until {offer.usable_until}")
    most = offer.maximum_grants_per_user
    if most is not None and member.counts.grants >= most:
        raise Refused("per_user_limit", f"the member was granted the offer {most} time(s) already")
    uses = offer.maximum_uses_per_user
    if uses is not None and member.counts.uses + len(member.counts.held or []) >= uses:
        raise Refused(
            "per_user_limit",
            f"the member may use the offer {uses} time(s) and used or holds grants for"
            " them all: another grant could never be used",
        )
    if offer.stock is not None and counts.uses_count + counts.reserved_count >= offer.stock:
        raise Refused("out_of_stock", f"all {offer.stock} of the offer's stock is used or granted")
    usable_until = grant_ends(offer, command)
    until = None if usable_until is None else holds_until(now, usable_until)
    held = list(member.counts.held or [])
    through = state.released_through
    ended = usable_until is not None and (
        usable_until <= now or (through is not None and until is not None and until <= through)
    )
    if not ended:  # (ended: a later command's time passed its bucket; it holds nothing)
        state = _reserve(state, until)
        held.append(
            HeldGrant(
                granted_at=now,
                usable_until=usable_until,
                holds_until=until,
                for_offer_id=command.for_offer_id,
            )
        )
    while len(held) > KEPT_HELD:  # the oldest gives its unit back
        state = _given_back(state, held.pop(0))
    last = member.counts.last_granted_at
    mine = member.model_copy(
        update={
            "counts": member.counts.model_copy(
                update={
                    "grants": member.counts.grants + 1,
                    "last_granted_at": now if last is None else max(last, now),
                    "held": held,
                }
            )
        }
    )
    granted = state.counts.model_copy(update={"grants_count": state.counts.grants_count + 1})
    return state.model_copy(update={"counts": granted}), mine


def _use(
    offer: CatalogDefinition, state: OfferState, member: MemberState, command: MemberCommand
) -> tuple[OfferState, MemberState, Use]:
    now = command.issued_at
    counts = state.counts
    if offer.type in UNUSABLE_TYPES:
        raise Refused("not_usable_type", f"{offer.type} offers are shown, not used")
    if offer.usable_since is not None and now < offer.usable_since:
        raise Refused("not_usable_yet", f"the offer is usable from {offer.usable_since}")
    if offer.usable_until is not None and now >= offer.usable_until:
        raise Refused("usable_window_closed", f"the offer was usable until {offer.usable_until}")
    if offer.type in GRANTED_TYPES and member.counts.grants == 0:
        raise Refused("not_granted", f"{offer.type} offers must be granted before use")
    held = list(member.counts.held or [])  # settled: each may be used now
    _within_grant(offer, member, held, now)
    _authorized(offer, command)
    if command.encoded_token_id is not None and command.encoded_token_id in member.used_tokens:
        raise Refused("token_used", "this encoded offer was used already")
    most = offer.maximum_uses_per_user
    if most is not None and member.counts.uses >= most:
        raise Refused("per_user_limit", f"the member used the offer {most} time(s) already")
    recent = _periodic_check(offer, member, command)
    grant = _grant_used(held, command.for_offer_id)
    taken, holds_reserved = (state, False) if grant is None else _unreserve(state, grant)
    if (
        not holds_reserved
        and offer.stock is not None
        and counts.uses_count + counts.reserved_count >= offer.stock
    ):
        raise Refused("out_of_stock", f"all {offer.stock} of the offer's stock is used")
    tokens = member.used_tokens
    if command.encoded_token_id is not None:
        tokens = [*tokens, command.encoded_token_id][-KEPT_TOKENS:]
    mine = MemberState(
        counts=member.counts.model_copy(
            update={
                "uses": member.counts.uses + 1,
                "last_used_at": now,
                "held": [g for g in held if g is not grant],
            }
        ),
        use_times=[*recent, now][-KEPT_USE_TIMES:],
        used_tokens=tokens,
    )
    used = taken.counts.model_copy(update={"uses_count": taken.counts.uses_count + 1})
    return taken.model_copy(update={"counts": used}), mine, _the_use(offer.terms, command)


def _release(
    state: OfferState, member: MemberState, command: MemberCommand
) -> tuple[OfferState, MemberState]:
    """Give back the unit held by the grant that issued the generated offer
    ``command.for_offer_id`` (it expired unredeemed). Nothing to give back (the grant
    was used, released already, or never made) changes nothing: a release decided again
    is the same."""
    held = list(member.counts.held or [])
    grant = _issued_by(held, command.for_offer_id)
    if grant is None:
        return state, member
    state = _given_back(state, grant)
    kept = [g for g in held if g is not grant]
    return state, member.model_copy(
        update={"counts": member.counts.model_copy(update={"held": kept})}
    )


def _issued_by(held: list[HeldGrant], for_offer_id: int | None) -> HeldGrant | None:
    """The held grant that issued the generated offer ``for_offer_id``, if any."""
    if for_offer_id is None:
        return None
    return next((g for g in held if g.for_offer_id == for_offer_id), None)


def _grant_used(held: list[HeldGrant], for_offer_id: int | None) -> HeldGrant | None:
    """The held grant a use takes: the one that issued the generated offer it redeems,
    else the one that ends first (one held until used last)."""
    mine = _issued_by(held, for_offer_id)
    if mine is not None:
        return mine
    return min(held, key=lambda g: (g.usable_until is None, g.usable_until or _EPOCH), default=None)


def _within_grant(
    offer: CatalogDefinition, member: MemberState, held: list[HeldGrant], now: datetime
) -> None:
    """:class:`Refused` when the member was granted the offer, holds no grant that may
    still be used, and the last grant's time is over."""
    if held:
        return
    seconds = offer.usable_in_seconds_after_granting
    granted = member.counts.last_granted_at
    if seconds is not None and granted is not None and now >= granted + timedelta(seconds=seconds):
        raise Refused(
            "grant_expired",
            f"the grant of {granted.isoformat()} was usable for {seconds} s",
        )


def _authorized(offer: CatalogDefinition, command: MemberCommand) -> None:
    if not offer.usage_authorization_token_required:
        return
    given = (command.authorization_token or "").encode()
    wanted = (offer.usage_authorization_token or "").encode()
    if not hmac.compare_digest(given, wanted):
        raise Refused("bad_authorization_token", "the usage authorization token is wrong")


def _periodic_check(
    offer: CatalogDefinition, member: MemberState, command: MemberCommand
) -> list[datetime]:
    """The member's use times worth keeping; :class:`Refused` when the period is full."""
    usage = offer.periodic_usage
    if usage is None:
        return member.use_times
    start, end = period(usage.timespan, command.issued_at, command.timezone)
    in_period = sum(1 for at in member.use_times if start <= at < end)
    if in_period >= usage.limit:
        raise Refused(
            "periodic_limit",
            f"{usage.limit} use(s) per {usage.timespan} reached; next from {end.isoformat()}",
            resets_at=end,
        )
    return member.use_times


def _the_use(terms: CatalogTerms | None, command: MemberCommand) -> Use:
    use_id = "use-" + hashlib.blake2b(command.command_id.encode(), digest_size=10).hexdigest()
    if terms is None:
        return Use(use_id=use_id)
    expires = (
        command.issued_at + timedelta(days=terms.valid_days)
        if terms.valid_days is not None
        else None
    )
    return Use(
        use_id=use_id, code=code_for(terms.code_pattern, use_id), terms=terms, expires_at=expires
    )


def code_for(pattern: str | None, use_id: str) -> str | None:
    """The code a use gives: each ``#`` of ``pattern`` is a character derived from the
    use's id (so a use decided again has the same code)."""
    if pattern is None:
        return None
    digest = hashlib.blake2b(use_id.encode(), digest_size=32).digest()
    chars = iter(CODE_ALPHABET[b % len(CODE_ALPHABET)] for b in digest)
    return "".join(next(chars) if c == "#" else c for c in pattern)


def _react(
    counts: OfferCounts, member: MemberState, command: MemberCommand
) -> tuple[OfferCounts, MemberState]:
    liked = member.counts.liked
    if command.action in ("like", "unlike"):
        wants = command.action == "like"
        delta = (1 if wants else -1) if wants != liked else 0
        mine = member.model_copy(
            update={"counts": member.counts.model_copy(update={"liked": wants})}
        )
        return counts.model_copy(update={"likes_count": counts.likes_count + delta}), mine
    field = "seen_count" if command.action == "seen" else "clicked_count"
    return counts.model_copy(update={field: getattr(counts, field) + 1}), member


def projected_counts(state: OfferState) -> OfferCounts:
    """The counts an event carries: the state's, with its buckets of reservations, so
    that readers see each bucket released from its end on (before the next command)."""
    return state.counts.model_copy(update={"ending": list(state.reservations)})


def _member_event(
    command: MemberCommand,
    state: OfferState,
    member: MemberState,
    kind: CatalogEventKind,
    use: Use | None,
) -> CatalogEvent:
    return CatalogEvent(
        event_id=command.command_id,
        kind=kind,
        action=command.action,
        tenant_id=command.tenant_id,
        offer_id=command.offer_id,
        external_customer_id=command.external_customer_id,
        at=command.issued_at,
        seq=state.seq,
        use=use,
        encoded_token_id=command.encoded_token_id if use is not None else None,
        counts=projected_counts(state),
        member=member.counts,
        source=command.source,
    )


def _event(
    command: DefinitionCommand,
    state: OfferState,
    kind: CatalogEventKind,
    reason: RefusalReason | None,
    message: str | None,
    version: int,
) -> CatalogEvent:
    return CatalogEvent(
        event_id=command.command_id,
        kind=kind,
        action=command.action,
        tenant_id=command.tenant_id,
        target=command.target,
        offer_id=command.id,
        at=command.issued_at,
        seq=state.seq,
        reason=reason,
        message=message,
        counts=projected_counts(state),
        version=version,
        source=command.source,
    )


def visible(offer: CatalogDefinition, now: datetime) -> bool:
    """Published, not archived, and inside its visible window at ``now``."""
    return (
        offer.status == "published"
        and offer.archived_at is None
        and within(now, offer.visible_since, offer.visible_until)
    )
