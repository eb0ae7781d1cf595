"""A tenant's own trigger rules and policy: the messages that change them. Pure.

The API asks for a change with a :class:`ConfigCommand` on
``proffer.tenant-config-commands``, keyed by tenant and kind. Its one owner (a worker
agent) decides it against the version in force (:func:`decide_change`): the change is a
:class:`ConfigChange` on the compacted topic ``proffer.tenant-config`` with a version one
more than the last, and the answer a :class:`ConfigOutcome`. Workers read the whole
topic, so a change takes effect on every worker within seconds; the sink keeps the
latest of each in PostgreSQL for the API.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, model_validator

from proffer_stream.core.types import StrictModel, TenantId, Text, UtcDatetime
from proffer_stream.offers.policy import Policy
from proffer_stream.offers.rules import RuleSet, TriggerRule

ConfigKind = Literal["rules", "policy"]
COMMANDS_KEPT = 10_000
"""Changes remembered by the command that made them, so that a command decided again
(replayed after a crash) answers as it did: far more than can be replayed at once."""


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
    command_id: str | None = Field(None, description="The command that made it.")

    @model_validator(mode="after")
    def _body_matches_kind(self) -> ConfigChange:
        if (self.rules is None) == (self.policy is None) or getattr(self, self.kind) is None:
            raise ValueError(f"a '{self.kind}' change carries exactly its {self.kind}")
        return self


class ConfigCommand(StrictModel):
    """A request to replace a tenant's rule set or policy, on
    ``proffer.tenant-config-commands``, decided by the one owner of its key."""

    schema_version: Literal[1] = 1
    command_id: str
    tenant_id: TenantId
    kind: ConfigKind
    base_version: int = Field(
        ge=0,
        description="The version the change was made against (0: the defaults). If another"
        " is in force when it is decided, it is rejected.",
    )
    rules: list[TriggerRule] | None = Field(None, description="The new rules, for 'rules'.")
    policy: Policy | None = Field(None, description="The new policy, for 'policy'.")
    issued_at: UtcDatetime
    issued_by: Text | None = Field(None, description="The API key's name.")

    @model_validator(mode="after")
    def _body_matches_kind(self) -> ConfigCommand:
        if (self.rules is None) == (self.policy is None) or getattr(self, self.kind) is None:
            raise ValueError(f"a '{self.kind}' command carries exactly its {self.kind}")
        return self


class ConfigOutcome(StrictModel):
    """What became of a :class:`ConfigCommand`, on ``proffer.tenant-config-outcomes``."""

    schema_version: Literal[1] = 1
    command_id: str
    tenant_id: TenantId
    kind: ConfigKind
    outcome: Literal["applied", "rejected"]
    version: int = Field(ge=0, description="The version in force after it.")
    reason: str | None = Field(None, description="Why it was rejected.")
    change: ConfigChange | None = Field(None, description="The change it made, when applied.")
    occurred_at: UtcDatetime


def decide_change(
    command: ConfigCommand, current: ConfigChange | None, default_rules: RuleSet, now: datetime
) -> ConfigOutcome:
    """Apply ``command`` to the change in force (None: the defaults), or reject it when
    it was made against another version."""
    in_force = current.version if current else 0
    if command.base_version != in_force:
        return ConfigOutcome(
            command_id=command.command_id,
            tenant_id=command.tenant_id,
            kind=command.kind,
            outcome="rejected",
            version=in_force,
            reason=f"the {command.kind} changed meanwhile: version {in_force} is in force,"
            f" the change was made against version {command.base_version}",
            occurred_at=now,
        )
    version = in_force + 1
    rules = None
    if command.rules is not None:
        old = current.rules if current and current.rules else default_rules
        rules = versioned_rules(command.rules, old, version)
    change = ConfigChange(
        tenant_id=command.tenant_id,
        kind=command.kind,
        version=version,
        rules=rules,
        policy=command.policy,
        changed_at=now,
        changed_by=command.issued_by,
        command_id=command.command_id,
    )
    return applied(command, change, now)


def applied(command: ConfigCommand, change: ConfigChange, now: datetime) -> ConfigOutcome:
    """The outcome of ``command``, which made ``change``."""
    return ConfigOutcome(
        command_id=command.command_id,
        tenant_id=command.tenant_id,
        kind=command.kind,
        outcome="applied",
        version=change.version,
        change=change,
        occurred_at=now,
    )


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
        self._latest: dict[tuple[str, ConfigKind], ConfigChange] = {}
        self._made_by: dict[str, ConfigChange] = {}

    def apply(self, change: ConfigChange) -> bool:
        """Take ``change`` unless a later version is in force; True when taken."""
        if change.command_id is not None:
            self._made_by[change.command_id] = change
            if len(self._made_by) > COMMANDS_KEPT:
                del self._made_by[next(iter(self._made_by))]
        key = (change.tenant_id, change.kind)
        known = self._latest.get(key)
        if known is not None and known.version > change.version:
            return False
        self._latest[key] = change
        if change.rules is not None:
            self._rules[change.tenant_id] = change.rules
        if change.policy is not None:
            self._policies[change.tenant_id] = change.policy
        return True

    def change(self, tenant_id: str, kind: ConfigKind) -> ConfigChange | None:
        """The tenant's change of this kind in force; None while the defaults are."""
        return self._latest.get((tenant_id, kind))

    def made_by(self, command_id: str) -> ConfigChange | None:
        """The change a command made, if one did (of the changes read since start)."""
        return self._made_by.get(command_id)

    def rules(self, tenant_id: str) -> RuleSet:
        return self._rules.get(tenant_id, self.default_rules)

    def policy(self, tenant_id: str) -> Policy:
        return self._policies.get(tenant_id, self.default_policy)

    def rule(self, tenant_id: str, rule_id: str) -> TriggerRule | None:
        """The tenant's rule of this id in force, if it has one."""
        return next((r for r in self.rules(tenant_id).rules if r.id == rule_id), None)


def what_changed(
    change: ConfigChange, previous: ConfigChange | None, default_rules: RuleSet
) -> list[str]:
    """What ``change`` changed of the version before it, in short lines: rules added,
    removed and changed (with their new versions), or policy fields with their old and
    new values. Version 1 is compared with the defaults (``default_rules``, the default
    policy); ``previous`` None for a later version means the one before is not known."""
    if previous is None and change.version > 1:
        return [f"version {change.version - 1} is not kept: the whole {change.kind} below"]
    if change.rules is not None:
        old_rules = previous.rules if previous is not None else None
        return _rules_changed(old_rules or default_rules, change.rules)
    if change.policy is not None:
        old_policy = previous.policy if previous is not None else None
        old = (old_policy or Policy()).model_dump(mode="json")
        new = change.policy.model_dump(mode="json")
        lines = [
            f"{name}: {_shown(old[name])} → {_shown(v)}"
            for name, v in new.items()
            if old[name] != v
        ]
        return lines or ["no field changed"]
    return []


def _shown(value: object) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "none"
    return str(value).lower() if isinstance(value, bool) else str(value)


def _rules_changed(old: RuleSet, new: RuleSet) -> list[str]:
    before = {rule.id: rule for rule in old.rules}
    after = {rule.id: rule for rule in new.rules}
    lines = [f"added {rule_id}" for rule_id in after if rule_id not in before]
    lines += [f"removed {rule_id}" for rule_id in before if rule_id not in after]
    lines += [
        f"changed {rule_id} (now v{rule.version})"
        for rule_id, rule in after.items()
        if rule_id in before and not _same(rule, before[rule_id])
    ]
    if not lines and [r.id for r in old.rules] != [r.id for r in new.rules]:
        lines.append("reordered the rules")
    return lines or ["no rule changed"]
