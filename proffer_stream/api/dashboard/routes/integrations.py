"""Integrations: where the tenant's placements run (allowed and blocked sites) and what
each placement may show; create and edit in a JSON editor, archive, through the
integrations API's own handlers (so a 422 names its field and a 409 says why)."""

from __future__ import annotations

import json
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse

from proffer_stream.api.catalog import catalog_io
from proffer_stream.api.dashboard import forms
from proffer_stream.api.dashboard.outcome import shown_after
from proffer_stream.api.dashboard.web import Form, SignedIn, Viewer, render
from proffer_stream.api.routes import integrations as api
from proffer_stream.catalog.models import IntegrationFields, PlacementFields

router = APIRouter(include_in_schema=False)

IntegrationId = Annotated[int, Path(ge=1, lt=2**53)]
NEW_INTEGRATION = IntegrationFields(
    name="Web shop",
    allowed_sites=["shop.example", "*.shop.example"],
    placements={"order_confirmation": PlacementFields(all_catalog_offers=True)},
)


@router.get("/dashboard/integrations")
async def integrations_page(request: Request, viewer: SignedIn, edit: str = "") -> HTMLResponse:
    return await _page(request, viewer, edit_id=_item_id(edit))


@router.post("/dashboard/integrations")
async def save_integration(request: Request, viewer: SignedIn, fields: Form) -> HTMLResponse:
    """Create an integration, or change the one named by ``id``, from the editor's JSON."""
    text = forms.first(fields, "document")
    integration_id = _item_id(forms.first(fields, "id"))
    body, errors = forms.parse_json_document(text, IntegrationFields)
    if body is None:
        return await _page(request, viewer, edit_id=integration_id, text=text, errors=errors)
    io = await catalog_io(request)
    if integration_id:
        patch = json.loads(text)
        call = api.update_integration(integration_id, patch, viewer.tenant_id, viewer.key_name, io)
        done = f"Saved integration {integration_id}."
    else:
        call = api.create_integration(body, viewer.tenant_id, viewer.key_name, io)
        done = "Created the integration."
    return await shown_after(
        call, partial(_page, request, viewer), done, text=text, edit_id=integration_id
    )


@router.post("/dashboard/integrations/{integration_id}")
async def archive_integration(
    request: Request, viewer: SignedIn, _fields: Form, integration_id: IntegrationId
) -> HTMLResponse:
    """Archive one integration: its flows end."""
    io = await catalog_io(request)
    call = api.archive_integration(integration_id, viewer.tenant_id, viewer.key_name, io)
    return await shown_after(
        call, partial(_page, request, viewer), f"Archived integration {integration_id}."
    )


async def _page(
    request: Request,
    viewer: Viewer,
    *,
    edit_id: int | None = None,
    text: str | None = None,
    errors: list[forms.FieldError] | None = None,
    notice: str | None = None,
    status: int | None = None,
) -> HTMLResponse:
    io = await catalog_io(request)
    listed = await api.list_tenant_integrations(viewer.tenant_id, io, with_archived=True)
    integrations = listed.integrations
    editing = next((i for i in integrations if i.id == edit_id and i.archived_at is None), None)
    if text is None:
        shown = editing or NEW_INTEGRATION
        written = shown.model_dump(mode="json", include=set(IntegrationFields.model_fields))
        text = json.dumps(written, indent=2, ensure_ascii=False)
    return render(
        request,
        viewer,
        "integrations.html",
        status or (422 if errors else 200),
        page="integrations",
        integrations=integrations,
        edit_id=edit_id if editing or errors else None,
        text=text,
        errors=forms.errors_by_field(errors or []),
        notice=notice,
    )


def _item_id(text: str) -> int | None:
    ids = forms.offer_ids([text])
    return ids[0] if ids else None
