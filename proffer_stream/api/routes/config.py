"""``/api/rules`` and ``/api/policy``: a tenant's trigger rules and policy, read and replaced.

A change is validated whole and goes, as a command, to the one owner of the tenant's
config (a worker agent), which gives it the next version and puts it on the compacted
topic ``proffer.tenant-config`` that every worker follows: it is in force everywhere
within seconds and kept across restarts. A change made against a version no longer in
force (two at once) answers 409 with the version in force. Until a tenant changes them,
the deployment's defaults apply (``PROFFER_RULES_FILE`` or the built-in rules; the
default policy).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from proffer_stream.api.commands import (
    answer_config,
    change_config,
    config_pending,
    pending_or_unknown,
)
from proffer_stream.api.deps import (
    AppSettings,
    Db,
    KeyName,
    Publisher,
    Replies,
    ServicesDep,
    Tenant,
)
from proffer_stream.api.json_body import JsonBodyRoute
from proffer_stream.api.models import (
    NOT_JSON,
    ConfigChangePending,
    ErrorResponse,
    PolicyView,
    RulesUpdate,
    RulesView,
    VersionConflict,
)
from proffer_stream.api.params import CommandId
from proffer_stream.core.identity import new_request_id
from proffer_stream.db.tenant_config import get_config_outcome, latest_change
from proffer_stream.offers.config import ConfigChange, ConfigCommand, ConfigKind
from proffer_stream.offers.policy import Policy
from proffer_stream.offers.rules import TriggerRule

router = APIRouter(tags=["rules and policy"], route_class=JsonBodyRoute)

CHANGE_ANSWERS: dict[int | str, dict[str, Any]] = {
    **NOT_JSON,
    202: {"model": ConfigChangePending, "description": "Still being applied: poll poll_url"},
    409: {"model": VersionConflict, "description": "Changed meanwhile: the version in force"},
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
    responses=CHANGE_ANSWERS,
)
async def set_rules(
    body: RulesUpdate,
    tenant_id: Tenant,
    key_name: KeyName,
    db: Db,
    publisher: Publisher,
    replies: Replies,
    settings: AppSettings,
) -> RulesView | JSONResponse:
    """Replace the whole rule set. A rule keeps its version while unchanged; a changed
    rule gets one more, a new rule version 1. An empty list turns automatic offers off."""
    command = await _command(db, tenant_id, key_name, "rules", rules=body.rules)
    answer = await change_config(publisher, replies, db, settings, command)
    return answer if isinstance(answer, JSONResponse) else _rules_view(answer)


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
    responses=CHANGE_ANSWERS,
)
async def set_policy(
    body: Policy,
    tenant_id: Tenant,
    key_name: KeyName,
    db: Db,
    publisher: Publisher,
    replies: Replies,
    settings: AppSettings,
) -> PolicyView | JSONResponse:
    """Replace the whole policy; a field left out takes its default."""
    command = await _command(db, tenant_id, key_name, "policy", policy=body)
    answer = await change_config(publisher, replies, db, settings, command)
    return answer if isinstance(answer, JSONResponse) else _policy_view(answer)


@router.get(
    "/api/config/commands/{command_id}",
    response_model=RulesView | PolicyView,
    summary="What became of a rules or policy change",
    responses={
        202: {"model": ConfigChangePending, "description": "Not applied yet"},
        404: {"model": ErrorResponse, "description": "No such change of this tenant's"},
        409: {"model": VersionConflict, "description": "Changed meanwhile: the version in force"},
    },
)
async def get_config_command(
    command_id: CommandId, tenant_id: Tenant, db: Db, replies: Replies
) -> RulesView | PolicyView | JSONResponse:
    outcome = await get_config_outcome(db, tenant_id, command_id)
    if outcome is None:
        await pending_or_unknown(db, tenant_id, "config_command", command_id)
        return config_pending(command_id)
    answer = await answer_config(replies, db, outcome, deadline=0.0)
    if isinstance(answer, JSONResponse):
        return answer
    return _rules_view(answer) if answer.kind == "rules" else _policy_view(answer)


async def _command(
    db: Db,
    tenant_id: str,
    key_name: str,
    kind: ConfigKind,
    *,
    rules: list[TriggerRule] | None = None,
    policy: Policy | None = None,
) -> ConfigCommand:
    """The change as a command, made against the version in force as PostgreSQL has it."""
    current = await latest_change(db, tenant_id, kind)
    return ConfigCommand(
        command_id=new_request_id(),
        tenant_id=tenant_id,
        kind=kind,
        base_version=current.version if current else 0,
        rules=rules,
        policy=policy,
        issued_at=datetime.now(UTC),
        issued_by=key_name,
    )


def _rules_view(change: ConfigChange) -> RulesView:
    assert change.rules is not None
    return RulesView(version=change.version, rules=change.rules.rules, changed_at=change.changed_at)


def _policy_view(change: ConfigChange) -> PolicyView:
    assert change.policy is not None
    return PolicyView(version=change.version, policy=change.policy, changed_at=change.changed_at)
