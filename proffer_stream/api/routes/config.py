"""``/api/rules`` and ``/api/policy``: a tenant's trigger rules and policy, read and replaced.

A change is validated whole, gets the next version, and goes on the compacted topic
``proffer.tenant-config``, which every worker follows: it is in force everywhere within
seconds and kept across restarts. Until a tenant changes them, the deployment's
defaults apply (``PROFFER_RULES_FILE`` or the built-in rules; the default policy).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter

from proffer_stream.api.deps import AppSettings, Db, Publisher, ServicesDep, Tenant
from proffer_stream.api.models import NOT_JSON, ErrorResponse, PolicyView, RulesUpdate, RulesView
from proffer_stream.db.tenant_config import change_config, latest_change
from proffer_stream.kafka.topics import topics_for
from proffer_stream.offers.config import ConfigChange, ConfigKind, config_key, versioned_rules
from proffer_stream.offers.policy import Policy
from proffer_stream.offers.rules import RuleSet

router = APIRouter(tags=["rules and policy"])

INVALID: dict[int | str, dict[str, Any]] = {
    **NOT_JSON,
    422: {"model": ErrorResponse, "description": "Invalid: what and where"},
}


@router.get("/api/rules", response_model=RulesView, summary="The trigger rules in force")
async def get_rules(tenant_id: Tenant, db: Db, services: ServicesDep) -> RulesView:
    """The tenant's rule set, or the deployment's default (version 0) until it sets one."""
    change = await latest_change(db, tenant_id, "rules")
    if change is None or change.rules is None:
        return RulesView(version=0, rules=services.default_rules.rules, is_default=True)
    return RulesView(
        version=change.version,
        rules=change.rules.rules,
        changed_at=change.changed_at,
        is_default=False,
    )


@router.put(
    "/api/rules",
    response_model=RulesView,
    summary="Replace the trigger rules",
    responses=INVALID,
)
async def put_rules(
    body: RulesUpdate,
    tenant_id: Tenant,
    db: Db,
    publisher: Publisher,
    settings: AppSettings,
    services: ServicesDep,
) -> RulesView:
    """Replace the whole rule set. A rule keeps its version while unchanged; a changed
    rule gets one more, a new rule version 1. An empty list turns automatic offers off."""

    def make(current: ConfigChange | None) -> ConfigChange:
        old = current.rules if current and current.rules else services.default_rules
        version = current.version + 1 if current else 1
        return _change(tenant_id, "rules", version, rules=versioned_rules(body.rules, old, version))

    change = await change_config(db, tenant_id, "rules", make, _publish_to(publisher, settings))
    assert change.rules is not None
    return RulesView(version=change.version, rules=change.rules.rules, changed_at=change.changed_at)


@router.get("/api/policy", response_model=PolicyView, summary="The policy in force")
async def get_policy(tenant_id: Tenant, db: Db) -> PolicyView:
    """The tenant's policy, or the default (version 0) until it sets one."""
    change = await latest_change(db, tenant_id, "policy")
    if change is None or change.policy is None:
        return PolicyView(version=0, policy=Policy(), is_default=True)
    return PolicyView(version=change.version, policy=change.policy, changed_at=change.changed_at)


@router.put(
    "/api/policy",
    response_model=PolicyView,
    summary="Replace the policy",
    responses=INVALID,
)
async def put_policy(
    body: Policy, tenant_id: Tenant, db: Db, publisher: Publisher, settings: AppSettings
) -> PolicyView:
    """Replace the whole policy; a field left out takes its default."""

    def make(current: ConfigChange | None) -> ConfigChange:
        return _change(tenant_id, "policy", current.version + 1 if current else 1, policy=body)

    change = await change_config(db, tenant_id, "policy", make, _publish_to(publisher, settings))
    assert change.policy is not None
    return PolicyView(version=change.version, policy=change.policy, changed_at=change.changed_at)


def _change(
    tenant_id: str,
    kind: ConfigKind,
    version: int,
    *,
    rules: RuleSet | None = None,
    policy: Policy | None = None,
) -> ConfigChange:
    return ConfigChange(
        tenant_id=tenant_id,
        kind=kind,
        version=version,
        rules=rules,
        policy=policy,
        changed_at=datetime.now(UTC),
    )


def _publish_to(
    publisher: Publisher, settings: AppSettings
) -> Callable[[ConfigChange], Awaitable[None]]:
    """Publishing a change on ``proffer.tenant-config``, keyed by tenant and kind."""
    topic = topics_for(settings).tenant_config.name

    async def publish(change: ConfigChange) -> None:
        key = config_key(change.tenant_id, change.kind)
        await publisher.publish(key, change.model_dump_json().encode(), topic)

    return publish
