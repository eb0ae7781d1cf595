"""Rules and policy: each in a JSON editor, saved through the API's own handlers, with
every 422 message shown beside the field it names; the versions in force, and every
earlier version of each (newest first, a page at a time) with what it changed."""

from __future__ import annotations

import json
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel

from proffer_stream.api.dashboard import forms
from proffer_stream.api.dashboard.web import Form, SignedIn, Viewer, render, services_of
from proffer_stream.api.errors import ApiError
from proffer_stream.api.models import RulesUpdate
from proffer_stream.api.routes import config
from proffer_stream.api.services import Services
from proffer_stream.db.tenant_config import config_versions, latest_change
from proffer_stream.offers.config import ConfigChange, ConfigKind, what_changed
from proffer_stream.offers.policy import Policy

router = APIRouter(include_in_schema=False)

VERSIONS_SHOWN = 10
"""Versions of each kind a page lists; older ones are a link away."""


@dataclass(frozen=True)
class VersionRow:
    """One version as the history lists it: the change, what it changed of the version
    before, and the whole of it as JSON."""

    change: ConfigChange
    changed: list[str]
    document: str


@dataclass(frozen=True)
class History:
    """A page of a kind's versions, newest first; ``older``: the ``before`` of the next
    page, when there is one."""

    rows: list[VersionRow]
    before: int | None
    older: int | None


@router.get("/dashboard/rules")
async def rules_page(
    request: Request, viewer: SignedIn, rules_before: str = "", policy_before: str = ""
) -> HTMLResponse:
    before = {"rules": forms.version_number(rules_before)}
    before["policy"] = forms.version_number(policy_before)
    return await _page(request, viewer, before=before)


@router.post("/dashboard/rules")
async def save_rules(request: Request, viewer: SignedIn, fields: Form) -> HTMLResponse:
    return await _save(request, viewer, "rules", forms.first(fields, "document"), RulesUpdate)


@router.post("/dashboard/policy")
async def save_policy(request: Request, viewer: SignedIn, fields: Form) -> HTMLResponse:
    return await _save(request, viewer, "policy", forms.first(fields, "document"), Policy)


async def _save(
    request: Request, viewer: Viewer, kind: str, text: str, model: type[BaseModel]
) -> HTMLResponse:
    document, errors = forms.parse_json_document(text, model)
    if document is None:
        return await _page(request, viewer, kind=kind, text=text, errors=errors, status=422)
    services = services_of(request)
    put = config.set_rules if kind == "rules" else config.set_policy
    try:
        answer = await put(
            document,  # type: ignore[arg-type]
            viewer.tenant_id,
            viewer.key_name,
            services.pool,
            services.publisher,
            services.replies,
            services.settings,
        )
    except ApiError as exc:
        errors = [forms.FieldError(d.loc, d.message) for d in exc.body.error.details] or [
            forms.FieldError("document", exc.body.error.message)
        ]
        return await _page(request, viewer, kind=kind, text=text, errors=errors, status=exc.status)
    if isinstance(answer, JSONResponse):
        message = _pending_or_conflict(answer)
        return await _page(request, viewer, kind=kind, text=text, notice=message)
    return await _page(request, viewer, notice=f"Saved: {kind} version {answer.version}.")


def _pending_or_conflict(answer: JSONResponse) -> str:
    body = json.loads(bytes(answer.body))
    if answer.status_code == 409:
        return (
            f"Not saved: {body['error']['message']} (version"
            f" {body['error'].get('current_version')} is in force; reload and edit it)."
        )
    return "Accepted; still being applied (reload in a moment)."


async def _page(
    request: Request,
    viewer: Viewer,
    *,
    kind: str | None = None,
    text: str = "",
    errors: list[forms.FieldError] | None = None,
    notice: str | None = None,
    status: int = 200,
    before: dict[str, int | None] | None = None,
) -> HTMLResponse:
    services = services_of(request)
    before = before or {}
    history = {
        kind: await _history(services, viewer.tenant_id, kind, before.get(kind))
        for kind in ("rules", "policy")
    }
    rules = await config.get_rules(viewer.tenant_id, services.pool, services)
    policy = await config.get_policy(viewer.tenant_id, services.pool)
    by = {
        kind: change.changed_by if change else None
        for kind in ("rules", "policy")
        for change in [await latest_change(services.pool, viewer.tenant_id, kind)]
    }
    rules_text = json.dumps({"rules": [r.model_dump(mode="json") for r in rules.rules]}, indent=2)
    policy_text = policy.policy.model_dump_json(indent=2)
    return render(
        request,
        viewer,
        "rules.html",
        status,
        page="rules",
        rules=rules,
        policy=policy,
        changed_by=by,
        rules_text=text if kind == "rules" else rules_text,
        policy_text=text if kind == "policy" else policy_text,
        editing=kind,
        errors=forms.errors_by_field(errors or []),
        notice=notice,
        history=history,
    )


async def _history(
    services: Services, tenant_id: str, kind: ConfigKind, before: int | None
) -> History:
    """A page of the kind's versions; one more is read, to say what the page's oldest
    changed and whether there are older ones."""
    found = await config_versions(
        services.pool, tenant_id, kind, before=before, limit=VERSIONS_SHOWN + 1
    )
    rows = []
    for index, change in enumerate(found[:VERSIONS_SHOWN]):
        previous = found[index + 1] if index + 1 < len(found) else None
        if previous is not None and previous.version != change.version - 1:
            previous = None  # a version between them is not kept
        body = change.rules if change.rules is not None else change.policy
        assert body is not None  # a change carries its kind's body
        document = body.model_dump_json(indent=2)
        rows.append(
            VersionRow(change, what_changed(change, previous, services.default_rules), document)
        )
    older = rows[-1].change.version if len(found) > VERSIONS_SHOWN else None
    return History(rows, before, older)
