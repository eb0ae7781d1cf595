"""Properties of releasing grants: for any sequence of grants, uses and time jumps
(backwards too: commands arrive in an order their times need not follow), stock is never
oversold, counts never go negative, every unit held is a member's live grant (none is
released twice nor lost; a generated offer's grant by a release of that offer too), and
a use is never made on a grant whose time was over."""

from datetime import UTC, datetime, timedelta

import pytest
from catalog_factories import defined_offer
from hypothesis import given, settings
from hypothesis import strategies as st

from proffer_stream.catalog.limits import MemberState, OfferState, decide_member
from proffer_stream.catalog.models import MemberCommand

pytestmark = pytest.mark.unit

START = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)


def defined(**fields):
    return defined_offer(START, **fields)


steps = st.lists(
    st.tuples(
        st.sampled_from(["grant", "grant", "use", "use", "seen", "release"]),
        st.integers(0, 5),  # the member
        st.integers(-120, 3 * 3600) | st.sampled_from([0, 1, 59, 60, 61]),  # the clock
        st.none() | st.integers(1, 4),  # a generated offer's grant, redemption or expiry
    ),
    max_size=80,
)


def holding(state: OfferState, members: dict[int, MemberState]) -> list:
    """The members' grants that still hold a unit: not released with their bucket."""
    through = state.released_through
    return [
        grant
        for member in members.values()
        for grant in member.counts.held or []
        if grant.holds_until is None or through is None or grant.holds_until > through
    ]


@settings(max_examples=600, deadline=None)
@given(
    steps=steps,
    stock=st.integers(0, 6),
    seconds=st.none() | st.sampled_from([0, 1, 60, 600, 3600]),
    per_user=st.none() | st.integers(1, 3),
    granted_type=st.booleans(),
)
def test_releasing_grants_never_oversells(steps, stock, seconds, per_user, granted_type):
    state = defined(
        type="exclusive" if granted_type else "regular",
        stock=stock,
        usable_in_seconds_after_granting=seconds,
        maximum_grants_per_user=per_user,
    )
    members: dict[int, MemberState] = {}
    grants: dict[int, list[datetime]] = {}  # each member's grant times, to check uses
    at = START
    used = 0
    for n, (action, member, jump, for_offer) in enumerate(steps):
        at += timedelta(seconds=jump)
        command = MemberCommand(
            command_id=f"c{n}",
            tenant_id="acme",
            offer_id=1,
            external_customer_id=f"m{member}",
            action=action,
            issued_at=at,
            for_offer_id=for_offer,
        )
        before = state.counts
        state, members[member], event = decide_member(
            state, members.get(member, MemberState()), command
        )
        counts = event.counts
        assert counts.uses_count + counts.reserved_count <= stock
        assert min(counts.reserved_count, counts.released_count, counts.uses_count) >= 0
        assert counts.released_count >= before.released_count
        assert all(r.count >= 1 for r in state.reservations)
        assert [r.holds_until for r in state.reservations] == sorted(
            {r.holds_until for r in state.reservations}
        )
        # Every unit held is one member's grant, once: none released twice, none lost.
        held = holding(state, members)
        assert counts.reserved_count == len(held)
        assert sum(r.count for r in state.reservations) == sum(
            g.holds_until is not None for g in held
        )
        for grant in held:
            assert grant.holds_until is None or grant.usable_until is not None
            if grant.usable_until is not None:
                assert grant.holds_until is not None and grant.holds_until >= grant.usable_until
        if event.kind == "granted":
            grants.setdefault(member, []).append(at)
        if event.kind == "used":
            used += 1
            if granted_type and seconds is not None:  # within a grant's time
                assert any(g <= at + timedelta(hours=4) for g in grants[member])
                assert any(at < g + timedelta(seconds=seconds) for g in grants[member])
    assert state.counts.uses_count == used <= stock
    assert state.counts.grants_count == sum(len(g) for g in grants.values())
