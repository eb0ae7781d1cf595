"""The tenant config agent's decisions, without a broker: one version per change, a
conflict for a change made against an old version, and a replayed command answered as
before."""

from datetime import UTC, datetime

import pytest

from proffer_stream.core.errors import BadRecord
from proffer_stream.offers.config import ConfigCommand, TenantConfigs, config_key
from proffer_stream.offers.policy import Policy
from proffer_stream.offers.rules import RuleSet
from proffer_stream.worker.config_owner import ConfigOwner, read_command

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


class Outbox:
    def __init__(self):
        self.changes, self.outcomes = [], []

    async def change(self, change):
        self.changes.append(change)

    async def outcome(self, outcome):
        self.outcomes.append(outcome)


class Follower:
    async def caught_up(self):
        return None


def command(command_id, base_version, discount=5):
    return ConfigCommand(
        command_id=command_id,
        tenant_id="acme",
        kind="policy",
        base_version=base_version,
        policy=Policy(max_discount_percent=discount),
        issued_at=NOW,
    )


@pytest.fixture
def owner():
    configs = TenantConfigs(RuleSet(version=0, rules=[]), Policy())
    return ConfigOwner(configs, Follower(), Outbox(), dead_letters=None)


async def test_changes_get_consecutive_versions_and_a_stale_one_is_refused(owner):
    assert (await owner.decide(command("a", 0), NOW)).version == 1
    assert (await owner.decide(command("b", 1), NOW)).version == 2
    stale = await owner.decide(command("c", 1), NOW)
    assert stale.outcome == "rejected" and stale.version == 2
    assert [c.version for c in owner.outbox.changes] == [1, 2]
    assert owner.configs.policy("acme").max_discount_percent == 5


async def test_a_replayed_command_answers_as_it_did_and_changes_nothing(owner):
    first = await owner.decide(command("a", 0, discount=7), NOW)
    await owner.decide(command("b", 1, discount=9), NOW)
    again = await owner.decide(command("a", 0, discount=7), NOW)
    assert again.outcome == "applied" and again.version == first.version == 1
    assert again.change == first.change
    assert len(owner.outbox.changes) == 2
    assert owner.configs.policy("acme").max_discount_percent == 9


def test_a_command_must_be_keyed_by_its_tenant_and_kind():
    value = command("a", 0).model_dump_json().encode()
    assert read_command(config_key("acme", "policy"), value).command_id == "a"
    with pytest.raises(BadRecord, match="it must be"):
        read_command(b"acme:someone", value)
