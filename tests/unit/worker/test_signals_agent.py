"""The signals agent without a broker: each record on its own, bad ones dead-lettered."""

import asyncio
import json
from types import SimpleNamespace

import pytest

from proffer_stream.ingest.records import RecordLimits
from proffer_stream.signals.fold import new_signals
from proffer_stream.signals.seen_ids import SeenIds, day_of
from proffer_stream.worker import signals_agent
from proffer_stream.worker.app import flush_when_caught_up
from proffer_stream.worker.profiles import Loaded
from proffer_stream.worker.signals_agent import SignalsAgent
from proffer_stream.worker.tenants import KnownTenants

pytestmark = pytest.mark.unit


class FakeProfiles:
    def __init__(self):
        self.stored = {}
        self.saved = []
        self.failing = set()

    async def load(self, keys, in_hand=None):
        states = {k: self.stored.get(k) or new_signals(*k) for k in keys if k not in self.failing}
        failed = {k: RuntimeError("bad data") for k in keys if k in self.failing}
        return Loaded(states=states, failed=failed)

    def save(self, states):
        self.saved.extend(states)


class FakeDeadLetters:
    def __init__(self):
        self.sent = []

    async def send(self, source, error):
        self.sent.append((source.offset, error.reason))


class FakeSeenIds:
    """The ids store as a dict of saved ``SeenIds`` per customer (one day)."""

    def __init__(self):
        self.saved = {}

    def load(self, key, now, source, known=None):
        buckets = [(day_of(now), 0, entries) for entries in self.saved.get(key, {}).values()]
        return SeenIds(day_of(now), buckets)

    def save(self, key, seen, source):
        self.saved.setdefault(key, {}).update(seen.changed())


class NoReroute:
    def misplaced(self, source):
        return False


class ExistingTenants:
    """PostgreSQL's tenants as a set; counts the lookups."""

    def __init__(self, *tenants):
        self.tenants = set(tenants)
        self.lookups = []

    async def __call__(self, tenant_ids):
        self.lookups.append(tenant_ids)
        return self.tenants & set(tenant_ids)


def record(offset, customer, events, key=None, tenant="acme", pad=""):
    value = {"tenant_id": tenant, "customer": {"id": customer, "name": pad}, "events": events}
    message = SimpleNamespace(
        topic="proffer.events",
        partition=0,
        offset=offset,
        timestamp=1_700_000_000.0,
        key=key if key is not None else f"{tenant}:{customer}".encode(),
        value=json.dumps(value).encode(),
    )
    return message


GATEWAY_LIMITS = RecordLimits(max_bytes=1_048_576, max_events=1000)


def agent(tenants=None, limits=GATEWAY_LIMITS):
    profiles, letters = FakeProfiles(), FakeDeadLetters()
    known = KnownTenants(tenants or ExistingTenants("acme"))
    under_test = SignalsAgent(profiles, letters, NoReroute(), FakeSeenIds(), known, limits)
    return under_test, profiles, letters


async def test_a_bad_record_is_dead_lettered_and_the_rest_of_the_batch_applied():
    under_test, profiles, letters = agent()
    batch = [
        record(0, "a", [{"type": "click"}]),
        record(1, "b", [{"type": "click"}], key=b"acme:wrong"),
        record(2, "a", [{"type": "click"}]),
    ]
    await under_test.process(batch)
    assert letters.sent == [(1, "wrong_key")]
    assert [(s.external_id, s.event_count) for s in profiles.saved] == [("a", 2)]


async def test_what_the_gateway_refuses_is_dead_lettered_and_the_batch_goes_on():
    tenants = ExistingTenants("acme")
    under_test, profiles, letters = agent(tenants, RecordLimits(max_bytes=1000, max_events=5))
    batch = [
        record(0, "a", [{"type": "click"}] * 6),
        record(1, "a", [{"type": "click"}], pad="x" * 1000),
        record(2, "a", [{"type": "click"}], tenant="ghost"),
        record(3, "a", [{"type": "click"}] * 5),
        record(4, "b", [{"type": "click"}], tenant="ghost"),
    ]
    await under_test.process(batch)
    assert [(s.external_id, s.event_count) for s in profiles.saved] == [("a", 5)]
    profiles.stored[("acme", "a")] = profiles.saved[-1]
    await under_test.process([record(5, "a", [{"type": "click"}]), batch[2]])
    assert letters.sent == [
        (0, "too_many_events"),
        (1, "too_large"),
        (2, "unknown_tenant"),
        (4, "unknown_tenant"),
        (2, "unknown_tenant"),
    ]
    assert profiles.saved[-1].event_count == 6
    assert tenants.lookups == [["acme", "ghost"], ["ghost"]]  # found once, then cached


async def test_a_tenant_made_after_its_records_were_refused_is_taken():
    tenants = ExistingTenants()
    under_test, profiles, letters = agent(tenants)
    await under_test.process([record(0, "a", [{"type": "click"}])])
    tenants.tenants.add("acme")
    await under_test.process([record(1, "a", [{"type": "click"}])])
    assert letters.sent == [(0, "unknown_tenant")]
    assert [s.event_count for s in profiles.saved] == [1]


async def test_a_record_that_raises_leaves_no_half_effect(monkeypatch):
    real = signals_agent.apply_record

    def explode_on_boom(state, customer, events, **kwargs):
        result = real(state, customer, events, **kwargs)
        if any(e.type == "boom" for e in events):
            raise ValueError("boom")  # after half its effect
        return result

    monkeypatch.setattr(signals_agent, "apply_record", explode_on_boom)
    under_test, profiles, letters = agent()
    batch = [
        record(0, "a", [{"type": "click"}]),
        record(1, "a", [{"type": "boom"}]),
        record(2, "a", [{"type": "click"}]),
    ]
    await under_test.process(batch)
    assert letters.sent == [(1, "processing_error")]
    [saved] = profiles.saved
    assert saved.counts_by_type == {"click": 2} and saved.source_offset == 2


async def test_a_customer_whose_profile_cannot_be_read_fails_only_its_records():
    under_test, profiles, letters = agent()
    profiles.failing.add(("acme", "b"))
    await under_test.process([record(0, "b", [{"type": "x"}]), record(1, "a", [{"type": "x"}])])
    assert letters.sent == [(0, "processing_error")]
    assert [s.external_id for s in profiles.saved] == ["a"]


async def test_a_replayed_record_writes_nothing():
    under_test, profiles, _ = agent()
    state = new_signals("acme", "a")
    state.source_offset = 5
    profiles.stored[("acme", "a")] = state
    await under_test.process([record(5, "a", [{"type": "click"}])])
    assert profiles.saved == []


async def test_a_replay_remembers_the_ids_a_crash_lost_so_a_resend_counts_once():
    under_test, profiles, _ = agent()
    state = new_signals("acme", "a")
    state.source_offset, state.event_count = 5, 1  # record 5 counted; its ids were lost
    profiles.stored[("acme", "a")] = state
    await under_test.process([record(5, "a", [{"type": "click", "id": "e1"}])])
    assert profiles.saved == [] and under_test.seen_ids.saved  # only the ids written
    await under_test.process([record(6, "a", [{"type": "click", "id": "e1"}])])  # re-send
    assert [s.event_count for s in profiles.saved] == [1]


async def test_a_resent_request_counts_once_across_batches():
    under_test, profiles, _ = agent()
    request = [{"type": "click", "id": f"e{i}"} for i in range(1000)]
    profiles_after = []
    for offset, events in enumerate([request, [{"type": "click", "id": "other"}], request]):
        await under_test.process([record(offset, "a", events)])
        profiles.stored[("acme", "a")] = profiles.saved[-1]
        profiles_after.append(profiles.saved[-1].event_count)
    assert profiles_after == [1000, 1001, 1001]


async def test_the_ids_of_a_record_that_raised_are_not_remembered(monkeypatch):
    real = signals_agent.apply_record

    def explode_on_boom(state, customer, events, **kwargs):
        result = real(state, customer, events, **kwargs)
        if any(e.type == "boom" for e in events):
            raise ValueError("boom")
        return result

    monkeypatch.setattr(signals_agent, "apply_record", explode_on_boom)
    under_test, profiles, _ = agent()
    batch = [
        record(0, "a", [{"type": "boom", "id": "x"}]),
        record(1, "a", [{"type": "click", "id": "y"}]),
        record(2, "a", [{"type": "click", "id": "x"}]),
    ]
    await under_test.process(batch)
    assert profiles.saved[-1].counts_by_type == {"click": 2}


async def test_profiles_are_flushed_when_caught_up_or_when_the_last_flush_is_old():
    flushes = []

    async def flush():
        flushes.append(1)

    after_batch = flush_when_caught_up(flush, most_seconds=0.05)
    await after_batch(False)
    assert flushes == []  # behind, and flushed (created) just now
    await after_batch(True)
    assert flushes == [1]
    await asyncio.sleep(0.06)
    await after_batch(False)
    assert flushes == [1, 1]


class FailingTrigger:
    """An offer trigger with a bug for one customer."""

    def __init__(self, failing):
        self.failing, self.asked = failing, []

    async def after_update(self, state, counted, now):
        if state.external_id == self.failing:
            raise ValueError("a bug")
        self.asked.append(state.external_id)


async def test_a_trigger_that_fails_for_one_customer_dead_letters_its_record_not_the_worker():
    under_test, profiles, letters = agent()
    under_test.trigger = FailingTrigger("a")
    await under_test.process(
        [record(0, "a", [{"type": "click"}]), record(1, "b", [{"type": "click"}])]
    )
    assert letters.sent == [(0, "processing_error")]
    assert under_test.trigger.asked == ["b"]
    assert sorted((s.external_id, s.event_count) for s in profiles.saved) == [("a", 1), ("b", 1)]
