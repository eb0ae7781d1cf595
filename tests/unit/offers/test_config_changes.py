"""Deciding a tenant's rules and policy changes: versions, conflicts, rule versions."""

from datetime import UTC, datetime

import pytest

from proffer_stream.offers.config import (
    COMMANDS_KEPT,
    ConfigChange,
    ConfigCommand,
    TenantConfigs,
    decide_change,
    what_changed,
)
from proffer_stream.offers.policy import Policy
from proffer_stream.offers.rules import RuleSet, TriggerRule

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
RULE = TriggerRule(id="r1", name="One", conditions={"min_counts": {"click": 1}}, priority=1)
DEFAULTS = RuleSet(version=0, rules=[RULE])


def command(base_version: int, command_id: str = "c1", **body) -> ConfigCommand:
    body = body or {"policy": Policy(max_discount_percent=5)}
    kind = "rules" if "rules" in body else "policy"
    return ConfigCommand(
        command_id=command_id,
        tenant_id="acme",
        kind=kind,
        base_version=base_version,
        issued_at=NOW,
        **body,
    )


def test_the_first_change_is_version_one_made_against_the_defaults():
    outcome = decide_change(command(0), None, DEFAULTS, NOW)
    assert outcome.outcome == "applied" and outcome.version == 1
    assert outcome.change is not None and outcome.change.command_id == "c1"
    assert outcome.change.policy == Policy(max_discount_percent=5)


def test_a_change_made_against_another_version_is_rejected_with_the_one_in_force():
    current = decide_change(command(0), None, DEFAULTS, NOW).change
    late = decide_change(command(0, "c2"), current, DEFAULTS, NOW)
    assert late.outcome == "rejected" and late.change is None
    assert late.version == 1 and "version 1 is in force" in (late.reason or "")


def test_rule_versions_follow_the_rules_in_force_defaults_included():
    changed = RULE.model_copy(update={"name": "Renamed"})
    new = TriggerRule(id="r2", name="Two", conditions={"min_counts": {"click": 2}}, priority=2)
    outcome = decide_change(command(0, rules=[changed, new]), None, DEFAULTS, NOW)
    assert outcome.change is not None and outcome.change.rules is not None
    assert [(r.id, r.version) for r in outcome.change.rules.rules] == [("r1", 2), ("r2", 1)]


def test_configs_remember_the_change_each_command_made_and_keep_the_latest():
    configs = TenantConfigs(DEFAULTS, Policy())
    first = decide_change(command(0), None, DEFAULTS, NOW).change
    second = decide_change(command(1, "c2"), first, DEFAULTS, NOW).change
    assert first and second
    assert configs.apply(second) and not configs.apply(first)
    assert configs.change("acme", "policy") == second
    assert configs.made_by("c1") == first and configs.made_by("c2") == second
    for n in range(COMMANDS_KEPT):
        configs.apply(second.model_copy(update={"command_id": f"x{n}"}))
    assert configs.made_by("c1") is None  # bounded


def test_old_changes_without_a_command_id_still_parse():
    old = '{"schema_version":1,"tenant_id":"acme","kind":"policy","version":3,'
    old += '"policy":{},"changed_at":"2026-01-01T00:00:00Z"}'
    assert ConfigChange.model_validate_json(old).command_id is None


def _change(version: int, **body) -> ConfigChange:
    kind = "rules" if "rules" in body else "policy"
    return ConfigChange(tenant_id="acme", kind=kind, version=version, changed_at=NOW, **body)


def test_what_changed_names_the_rules_added_removed_and_changed():
    other = TriggerRule(id="r2", name="Two", conditions={"min_counts": {"view": 1}})
    first = _change(1, rules=RuleSet(version=1, rules=[RULE, other]))
    assert what_changed(first, None, DEFAULTS) == ["added r2"]
    changed = RULE.model_copy(update={"priority": 9, "version": 2})
    third = TriggerRule(id="r3", name="Three", conditions={"min_counts": {"buy": 1}})
    second = _change(2, rules=RuleSet(version=2, rules=[changed, third]))
    assert what_changed(second, first, DEFAULTS) == [
        "added r3",
        "removed r2",
        "changed r1 (now v2)",
    ]
    same = _change(3, rules=RuleSet(version=3, rules=[third, changed]))
    assert what_changed(same, second, DEFAULTS) == ["reordered the rules"]
    assert what_changed(same, None, DEFAULTS) == ["version 2 is not kept: the whole rules below"]


def test_what_changed_names_the_policy_fields_with_old_and_new_values():
    first = _change(1, policy=Policy(max_discount_percent=10, channels=["email"]))
    assert what_changed(first, None, DEFAULTS) == [
        "max_discount_percent: 30 → 10",
        "channels: email, sms, push, in_app → email",
    ]
    second = _change(
        2, policy=Policy(max_discount_percent=10, channels=["email"], auto_approve=True)
    )
    assert what_changed(second, first, DEFAULTS) == ["auto_approve: false → true"]
    assert what_changed(second, second, DEFAULTS) == ["no field changed"]
