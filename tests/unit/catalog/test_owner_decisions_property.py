"""Properties of the owner's decisions: whatever members do, in whatever order, no limit
is ever exceeded and no count goes negative."""

from datetime import UTC, datetime, timedelta

import pytest
from catalog_factories import defined_offer
from hypothesis import given, settings
from hypothesis import strategies as st

from proffer_stream.catalog.limits import MemberState, decide_member
from proffer_stream.catalog.models import (
    MemberCommand,
    PeriodicUsage,
)
from proffer_stream.catalog.periods import period

pytestmark = pytest.mark.unit

START = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)  # DST in Warsaw and New York moves soon
ZONES = ["UTC", "Europe/Warsaw", "America/New_York"]


def defined(**fields):
    return defined_offer(START, **fields)


steps = st.lists(
    st.tuples(
        st.sampled_from(["grant", "use", "use", "like", "unlike", "seen"]),
        st.integers(0, 5),  # the member
        st.integers(0, 4 * 3600),  # seconds after the one before
        st.sampled_from(ZONES),
    ),
    max_size=80,
)


@settings(max_examples=150, deadline=None)
@given(
    steps=steps,
    stock=st.integers(0, 12),
    per_user=st.none() | st.integers(0, 4),
    periodic=st.none() | st.tuples(st.sampled_from(["hour", "day", "week"]), st.integers(0, 3)),
    granted_type=st.booleans(),
)
def test_no_sequence_of_actions_exceeds_a_limit(steps, stock, per_user, periodic, granted_type):
    usage = None if periodic is None else PeriodicUsage(timespan=periodic[0], limit=periodic[1])
    state = defined(
        type="exclusive" if granted_type else "regular",
        stock=stock,
        maximum_uses_per_user=per_user,
        periodic_usage=usage,
    )
    members: dict[int, MemberState] = {}
    uses: dict[int, list[tuple[datetime, str]]] = {}
    at = START
    for n, (action, member, seconds, tz) in enumerate(steps):
        at += timedelta(seconds=seconds)
        command = MemberCommand(
            command_id=f"c{n}",
            tenant_id="acme",
            offer_id=1,
            external_customer_id=f"m{member}",
            action=action,
            issued_at=at,
            timezone=tz,
        )
        state, members[member], event = decide_member(
            state, members.get(member, MemberState()), command
        )
        counts = event.counts
        assert counts.uses_count + counts.reserved_count <= stock
        assert counts.likes_count >= 0 and counts.reserved_count >= 0
        assert counts.likes_count == sum(m.counts.liked for m in members.values())
        if event.kind == "used":
            uses.setdefault(member, []).append((at, tz))
            mine = uses[member]
            assert per_user is None or len(mine) <= per_user
            if usage is not None:
                start, end = period(usage.timespan, at, tz)
                assert sum(start <= t < end for t, _ in mine) <= usage.limit
            if granted_type:
                assert members[member].counts.grants >= 1
        elif event.kind == "refused":
            assert event.reason is not None
    assert state.counts.uses_count == sum(len(u) for u in uses.values())
