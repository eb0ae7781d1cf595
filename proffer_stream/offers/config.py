"""A tenant's own trigger rules and policy: the messages that change them. Pure.

Each change is a :class:`ConfigChange` on the compacted topic ``proffer.tenant-config``,
keyed by tenant and kind, with a version one more than the last; the latest version of
each key is in force. Workers read the whole topic, so a change takes effect on every
worker within seconds; the sink keeps the latest of each in PostgreSQL for the API and
for a broker that lost its log.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from proffer_stream.core.types import StrictModel, TenantId, Text, UtcDatetime
from proffer_stream.offers.policy import Policy
from proffer_stream.offers.rules import RuleSet, TriggerRule

ConfigKind = Literal["rules", "policy"]


class ConfigChange(StrictModel):
    """A tenant's new rule set or policy, on ``proffer.tenant-config``."""

    schema_version: Literal[1] = 1
    tenant_id: TenantId
    kind: ConfigKind
    version: int = Field(ge=1, description="One more with every change of this kind.")
    rules: RuleSet | None = Field(None, description="The whole rule set, for kind 'rules'.")
    policy: Policy | None = Field(None, description="The whole policy, for kind 'policy'.")
    changed_at: UtcDatetime
    changed_by: Text | None = Field(None, description="The API key's name.")

    @model_validator(mode="after")
    def _body_matches_kind(self) -> ConfigChange:
        if (self.rules is None) == (self.policy is None) or getattr(self, self.kind) is None:
            raise ValueError(f"a '{self.kind}' change carries exactly its {self.kind}")
        return self


def config_key(tenant_id: str, kind: ConfigKind) -> bytes:
    """The record key of a tenant's config of one kind (compaction keeps the latest)."""
    return f"{tenant_id}\0{kind}".encode()


def versioned_rules(new: list[TriggerRule], old: RuleSet, version: int) -> RuleSet:
    """``new`` as rule set ``version``: a rule keeps its version while it is unchanged.

    A changed rule gets one more than it had, a new rule version 1, whatever version the
    caller wrote, so a request's rule version always names what the rule said.
    """
    before = {rule.id: rule for rule in old.rules}
    rules = []
    for rule in new:
        previous = before.get(rule.id)
        if previous is None:
            rules.append(rule.model_copy(update={"version": 1}))
        elif _same(rule, previous):
            rules.append(previous)
        else:
            rules.append(rule.model_copy(update={"version": previous.version + 1}))
    return RuleSet(version=version, rules=rules)


def _same(a: TriggerRule, b: TriggerRule) -> bool:
    return a.model_dump(exclude={"version"}) == b.model_dump(exclude={"version"})


class TenantConfigs:
    """Every tenant's rules and policy in force: its latest change, else the defaults."""

    def __init__(self, default_rules: RuleSet, default_policy: Policy) -> None:
        self.default_rules = default_rules
        self.default_policy = default_policy
        self._rules: dict[str, RuleSet] = {}
        self._policies: dict[str, Policy] = {}
        self._versions: dict[tuple[str, ConfigKind], int] = {}

    def apply(self, change: ConfigChange) -> bool:
        """Take ``change`` unless a later version is in force; True when taken."""
        key = (change.tenant_id, change.kind)
        if self._versions.get(key, 0) > change.version:
            return False
        self._versions[key] = change.version
        if change.rules is not None:
            self._rules[change.tenant_id] = change.rules
        if change.policy is not None:
            self._policies[change.tenant_id] = change.policy
        return True

    def rules(self, tenant_id: str) -> RuleSet:
        return self._rules.get(tenant_id, self.default_rules)

    def policy(self, tenant_id: str) -> Policy:
        return self._policies.get(tenant_id, self.default_policy)

    def rule(self, tenant_id: str, rule_id: str) -> TriggerRule | None:
        """The tenant's rule of this id in force, if it has one."""
        return next((r for r in self.rules(tenant_id).rules if r.id == rule_id), None)
