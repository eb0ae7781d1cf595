"""Grants that end give their stock back: a grant past usable_in_seconds_after_granting
is released by the owner at its first command after (lazily, from the command's
issued_at), never before its grant ended, never twice; a generated offer's grant when the
offers agent says the offer expired (a release); and a member with several grants uses
the right one."""

from datetime import UTC, datetime, timedelta

import pytest
from catalog_factories import defined_offer

from proffer_stream.catalog.limits import (
    RELEASE_SLACK,
    MemberState,
    decide_definition,
    decide_member,
    holds_until,
)
from proffer_stream.catalog.models import (
    DefinitionCommand,
    HeldGrant,
    MemberCommand,
    MemberCounts,
    OfferCounts,
)

pytestmark = pytest.mark.unit

T0 = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)


def offer(**fields):
    return defined_offer(T0, **fields)


class Owner:
    """The owner's state of one offer and its members, deciding commands in order."""

    def __init__(self, state):
        self.state = state
        self.members: dict[str, MemberState] = {}
        self.n = 0

    def do(self, who, action, at, **fields):
        self.n += 1
        command = MemberCommand(
            command_id=f"c{self.n}",
            tenant_id="acme",
            offer_id=1,
            external_customer_id=who,
            action=action,
            issued_at=at,
            **fields,
        )
        self.state, self.members[who], event = decide_member(
            self.state, self.members.get(who, MemberState()), command
        )
        return event

    def kind(self, who, action, at, **fields):
        event = self.do(who, action, at, **fields)
        return event.kind, event.reason


def test_two_expired_grants_free_the_stock_for_a_third_member():
    owner = Owner(offer(type="exclusive", stock=2, usable_in_seconds_after_granting=1))
    assert owner.kind("ann", "grant", T0) == ("granted", None)
    assert owner.kind("bob", "grant", T0) == ("granted", None)
    assert owner.kind("cid", "grant", T0 + timedelta(milliseconds=500)) == (
        "refused",
        "out_of_stock",
    )
    assert owner.state.counts.reserved_count == 2
    later = T0 + timedelta(seconds=2)
    granted = owner.do("cid", "grant", later)
    assert granted.kind == "granted"
    assert (granted.counts.reserved_count, granted.counts.released_count) == (1, 2)
    assert owner.kind("ann", "use", later) == ("refused", "grant_expired")
    assert owner.kind("bob", "use", later) == ("refused", "grant_expired")
    assert owner.kind("cid", "use", later + timedelta(milliseconds=100)) == ("used", None)
    counts = owner.state.counts
    assert (counts.uses_count, counts.reserved_count, counts.released_count) == (1, 0, 2)
    assert owner.kind("dan", "grant", later) == ("granted", None)  # ann's and bob's unit


def test_a_unit_is_never_released_before_its_grant_ended():
    owner = Owner(offer(stock=1, usable_in_seconds_after_granting=3600))
    owner.do("ann", "grant", T0)
    held = owner.members["ann"].counts.held
    assert held is not None and held[0].usable_until == T0 + timedelta(hours=1)
    assert held[0].holds_until is not None
    assert T0 + timedelta(hours=1) <= held[0].holds_until
    assert held[0].holds_until <= T0 + timedelta(hours=1) + timedelta(seconds=3600 / 32)
    # Up to the bucket's end the unit stays held: another member is refused.
    just_before = held[0].holds_until - timedelta(microseconds=1)
    assert owner.kind("bob", "use", just_before) == ("refused", "out_of_stock")
    assert owner.state.counts.reserved_count == 1
    assert owner.kind("bob", "use", held[0].holds_until) == ("used", None)
    assert owner.state.counts.released_count == 1


def test_the_grantee_gives_back_an_expired_grant_at_once():
    owner = Owner(offer(type="exclusive", stock=1, usable_in_seconds_after_granting=3600))
    owner.do("ann", "grant", T0)
    expired = T0 + timedelta(hours=1)  # its bucket ends later
    assert owner.kind("ann", "use", expired) == ("refused", "grant_expired")
    counts = owner.state.counts
    assert (counts.reserved_count, counts.released_count) == (0, 1)
    assert owner.state.reservations == []
    assert owner.members["ann"].counts.held == []
    # The bucket's end passes: nothing more is released (not twice).
    owner.do("bob", "seen", expired + timedelta(days=1))
    assert (owner.state.counts.reserved_count, owner.state.counts.released_count) == (0, 1)
    assert owner.kind("bob", "grant", expired + timedelta(days=1)) == ("granted", None)


def test_a_generated_offers_grant_is_given_back_when_the_offer_expired():
    owner = Owner(offer(stock=1))
    owner.do("ann", "grant", T0, for_offer_id=77)
    days_later = T0 + timedelta(days=30)  # no end of its own: held until used or released
    assert owner.kind("bob", "grant", days_later) == ("refused", "out_of_stock")
    released = owner.do("ann", "release", days_later, for_offer_id=77)
    assert released.kind == "released"
    assert (released.counts.reserved_count, released.counts.released_count) == (0, 1)
    assert owner.members["ann"].counts.held == []
    # Decided again, or for an offer whose grant is gone: nothing more is given back.
    again = owner.do("ann", "release", days_later, for_offer_id=77)
    assert (again.kind, again.counts.released_count) == ("released", 1)
    assert owner.kind("bob", "grant", days_later) == ("granted", None)


def test_a_redemption_reaching_the_owner_late_still_takes_its_unit():
    owner = Owner(offer(stock=1))
    owner.do("ann", "grant", T0, for_offer_id=7)
    # The offer expired at T0 + 1 day in the offers domain, after ann redeemed it; her
    # use reaches the owner days later: her grant still holds the unit for it.
    later = T0 + timedelta(days=5)
    assert owner.kind("bob", "grant", later) == ("refused", "out_of_stock")
    assert owner.kind("ann", "use", later, for_offer_id=7) == ("used", None)
    assert owner.state.counts.uses_count == 1 and owner.state.counts.reserved_count == 0
    # A release of that offer after its use gives back nothing: the unit was used.
    assert owner.do("ann", "release", later, for_offer_id=7).counts.released_count == 0


def test_a_release_holds_whatever_became_of_the_catalog_offer():
    owner = Owner(offer(stock=1))
    owner.do("ann", "grant", T0, for_offer_id=9)
    archive = DefinitionCommand(
        command_id="archive",
        tenant_id="acme",
        target="offer",
        id=1,
        action="archive",
        base_version=1,
        issued_at=T0 + timedelta(hours=1),
    )
    owner.state = decide_definition(owner.state, archive)[0]
    assert owner.kind("ann", "release", T0 + timedelta(hours=2), for_offer_id=9) == (
        "released",
        None,
    )
    assert owner.state.counts.reserved_count == 0


def test_a_member_with_several_grants_uses_the_live_one_and_releases_the_ended():
    owner = Owner(
        offer(
            type="exclusive",
            stock=3,
            maximum_grants_per_user=3,
            usable_in_seconds_after_granting=60,
        )
    )
    owner.do("ann", "grant", T0)
    owner.do("ann", "grant", T0 + timedelta(seconds=30))
    assert owner.state.counts.reserved_count == 2
    # At 70 s the first ended (released now), the second is used.
    event = owner.do("ann", "use", T0 + timedelta(seconds=70))
    assert event.kind == "used"
    assert (event.counts.uses_count, event.counts.reserved_count) == (1, 0)
    assert event.counts.released_count == 1
    assert event.member is not None and event.member.held == []
    # The two others of the stock are free: two more members get them.
    assert owner.kind("bob", "grant", T0 + timedelta(seconds=71)) == ("granted", None)
    assert owner.kind("cid", "grant", T0 + timedelta(seconds=71)) == ("granted", None)
    assert owner.kind("dan", "grant", T0 + timedelta(seconds=71)) == ("refused", "out_of_stock")


def test_a_redemption_uses_the_grant_of_its_own_offer():
    owner = Owner(offer(stock=5, usable_in_seconds_after_granting=86_400))
    owner.do("ann", "grant", T0, for_offer_id=1)
    owner.do("ann", "grant", T0 + timedelta(hours=5), for_offer_id=2)
    owner.do("ann", "use", T0 + timedelta(hours=6), for_offer_id=2)
    held = owner.members["ann"].counts.held
    assert held is not None and [g.for_offer_id for g in held] == [1]
    # Without an offer named, the grant that ends first is used.
    owner.do("ann", "grant", T0 + timedelta(hours=7), for_offer_id=3)
    owner.do("ann", "use", T0 + timedelta(hours=8))
    assert [g.for_offer_id for g in owner.members["ann"].counts.held] == [3]


def test_a_command_with_an_earlier_time_after_a_release_oversells_nothing():
    owner = Owner(offer(type="exclusive", stock=1, usable_in_seconds_after_granting=60))
    owner.do("ann", "grant", T0)
    assert owner.kind("bob", "grant", T0 + timedelta(minutes=10)) == ("granted", None)
    # ann's use, issued before her grant ended but decided after its release: her unit
    # is bob's now, so she may use only free stock, and there is none.
    assert owner.kind("ann", "use", T0 + timedelta(seconds=30)) == ("refused", "out_of_stock")
    # A grant issued earlier than the release ended before it: it holds nothing.
    assert owner.kind("cid", "grant", T0) == ("refused", "out_of_stock")
    counts = owner.state.counts
    assert counts.uses_count + counts.reserved_count <= 1


def test_grants_without_an_end_are_held_until_used():
    owner = Owner(offer(stock=1))
    owner.do("ann", "grant", T0)
    assert owner.kind("bob", "use", T0 + timedelta(days=3650)) == ("refused", "out_of_stock")
    assert owner.kind("ann", "use", T0 + timedelta(days=3650)) == ("used", None)


def test_a_standing_kept_before_held_grants_were_holds_one_unit_as_before():
    state = offer(type="exclusive", stock=2, usable_in_seconds_after_granting=60)
    state = state.model_copy(update={"counts": OfferCounts(grants_count=2, reserved_count=2)})
    owner = Owner(state)
    owner.members["ann"] = MemberState(counts=MemberCounts(grants=1, last_granted_at=T0))
    owner.members["bob"] = MemberState(counts=MemberCounts(grants=1, last_granted_at=T0))
    assert owner.kind("ann", "use", T0 + timedelta(seconds=10)) == ("used", None)
    assert (owner.state.counts.uses_count, owner.state.counts.reserved_count) == (1, 1)
    assert owner.kind("bob", "use", T0 + timedelta(seconds=60)) == ("refused", "grant_expired")
    assert (owner.state.counts.reserved_count, owner.state.counts.released_count) == (0, 1)
    assert owner.kind("cid", "grant", T0 + timedelta(seconds=61)) == ("granted", None)


def test_a_standing_kept_before_held_grants_were_holds_a_unit_per_unused_grant():
    state = offer(type="exclusive", stock=3, maximum_grants_per_user=3)
    state = state.model_copy(update={"counts": OfferCounts(grants_count=2, reserved_count=2)})
    owner = Owner(state)
    owner.members["ann"] = MemberState(counts=MemberCounts(grants=2, last_granted_at=T0))
    assert owner.kind("ann", "use", T0 + timedelta(minutes=1)) == ("used", None)
    assert owner.kind("bob", "grant", T0 + timedelta(minutes=2)) == ("granted", None)
    # ann's second grant still holds its unit (the old owner reserved one per grant).
    assert owner.kind("ann", "use", T0 + timedelta(minutes=3)) == ("used", None)
    counts = owner.state.counts
    assert (counts.uses_count, counts.reserved_count) == (2, 1)


def test_many_grants_without_a_limit_keep_a_bounded_state():
    owner = Owner(offer(stock=None, usable_in_seconds_after_granting=3600))
    for n in range(3000):
        owner.do(f"m{n % 7}", "grant", T0 + timedelta(seconds=7 * n))
    assert len(owner.state.reservations) <= 2 * RELEASE_SLACK + 1
    assert all(len(m.counts.held or []) <= 100 for m in owner.members.values())
    live = sum(r.count for r in owner.state.reservations)
    assert owner.state.counts.reserved_count == live


@pytest.mark.parametrize("seconds", [0, 1, 59, 3600, 86_400 * 30, 86_400 * 365])
def test_a_bucket_ends_after_its_grant_and_not_much_later(seconds):
    granted = T0 + timedelta(microseconds=123_457)
    usable = granted + timedelta(seconds=seconds)
    end = holds_until(granted, usable)
    assert usable <= end <= usable + max(timedelta(seconds=1), timedelta(seconds=seconds) / 32)
    assert end == holds_until(granted, usable)  # the same when decided again
    assert HeldGrant(granted_at=granted, usable_until=usable, holds_until=end)


def test_a_grant_the_member_could_never_use_is_refused_not_held():
    """Stock 2, one use each: ann used hers, so a grant to her would hold a unit for
    ever (its use refused per_user_limit), and bob would be refused out_of_stock."""
    owner = Owner(offer(stock=2, maximum_uses_per_user=1))
    assert owner.kind("ann", "use", T0) == ("used", None)
    assert owner.kind("ann", "grant", T0, for_offer_id=5) == ("refused", "per_user_limit")
    assert owner.kind("bob", "grant", T0) == ("granted", None)
    assert owner.kind("bob", "grant", T0) == ("refused", "per_user_limit")  # holds one
    assert owner.kind("bob", "use", T0) == ("used", None)
    assert owner.state.counts.reserved_count == 0


def test_a_refused_redemption_of_a_generated_offer_gives_its_grant_back():
    """The offers domain redeemed the generated offer, so no release will come for it:
    its grant, which the refused use cannot take, is given back then."""
    closes = T0 + timedelta(hours=1)
    owner = Owner(offer(stock=1, usable_until=closes))
    assert owner.kind("ann", "grant", T0, for_offer_id=5) == ("granted", None)
    assert owner.kind("bob", "use", T0) == ("refused", "out_of_stock")
    refused = owner.do("ann", "use", closes, for_offer_id=5)
    assert (refused.kind, refused.reason) == ("refused", "usable_window_closed")
    assert (refused.counts.reserved_count, refused.counts.released_count) == (0, 1)
    assert owner.members["ann"].counts.held == []
    again = owner.do("ann", "use", closes, for_offer_id=5)  # the same redemption, resent
    assert (again.counts.reserved_count, again.counts.released_count) == (0, 1)
