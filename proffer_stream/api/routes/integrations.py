"""``/api/integrations``: where a tenant's placements run and what each may show.

An integration is a catalog definition (its third kind, next to offers and collections):
each change is validated whole (422 naming the field), made against the version read
(409 ``version_conflict`` when another change came first), decided by its one owner and
answered once projected and in this gateway's memory.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from proffer_stream.api.catalog import Catalog, CatalogIO, define
from proffer_stream.api.deps import KeyName, Tenant
from proffer_stream.api.errors import ApiError
from proffer_stream.api.json_body import JsonBodyRoute
from proffer_stream.api.routes.catalog import CHANGE_ANSWERS, NOT_FOUND, definition_command, merged
from proffer_stream.catalog.models import IntegrationDefinition, IntegrationFields
from proffer_stream.db.integrations import get_integration, integration_at, list_integrations

router = APIRouter(prefix="/api/integrations", tags=["integrations"], route_class=JsonBodyRoute)

IntegrationId = Annotated[int, Path(ge=1, lt=2**53, description="The integration's id.")]


class IntegrationView(IntegrationFields):
    """An integration as managed."""

    id: int
    version: int
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None

    @classmethod
    def of(cls, integration: IntegrationDefinition) -> IntegrationView:
        return cls.model_validate(integration.model_dump(exclude={"tenant_id", "command_id"}))


class IntegrationResponse(BaseModel):
    success: Literal[True] = True
    integration: IntegrationView


class IntegrationsResponse(BaseModel):
    success: Literal[True] = True
    integrations: list[IntegrationView]


def _reader(io: CatalogIO, tenant_id: str, integration_id: int) -> Any:
    async def read(version: int) -> IntegrationResponse | None:
        found = await integration_at(io.db, tenant_id, integration_id, version)
        return None if found is None else IntegrationResponse(integration=IntegrationView.of(found))

    return read


async def _current(io: CatalogIO, tenant_id: str, integration_id: int) -> IntegrationDefinition:
    found = await get_integration(io.db, tenant_id, integration_id)
    if found is None:
        raise ApiError(404, "integration_not_found", f"No integration {integration_id}.")
    return found


@router.post(
    "",
    response_model=IntegrationResponse,
    status_code=201,
    summary="Create an integration",
    responses=CHANGE_ANSWERS,
)
async def create_integration(
    body: IntegrationFields, tenant_id: Tenant, key_name: KeyName, io: Catalog
) -> Any:
    """Its sites (allowed, blocked) and placements, each with what may show there."""
    command = definition_command(tenant_id, key_name, "integration", "create", (0, 0), body)
    answer = await define(io, command, _reader(io, tenant_id, command.id))
    if isinstance(answer, IntegrationResponse):
        return JSONResponse(answer.model_dump(mode="json"), status_code=201)
    return answer


@router.get("", response_model=IntegrationsResponse, summary="List integrations")
async def list_tenant_integrations(
    tenant_id: Tenant, io: Catalog, with_archived: bool = False
) -> IntegrationsResponse:
    found = await list_integrations(io.db, tenant_id, with_archived=with_archived)
    return IntegrationsResponse(integrations=[IntegrationView.of(i) for i in found])


@router.get(
    "/{integration_id}",
    response_model=IntegrationResponse,
    summary="An integration",
    responses=NOT_FOUND,
)
async def get_tenant_integration(
    integration_id: IntegrationId, tenant_id: Tenant, io: Catalog
) -> IntegrationResponse:
    found = await _current(io, tenant_id, integration_id)
    return IntegrationResponse(integration=IntegrationView.of(found))


@router.patch(
    "/{integration_id}",
    response_model=IntegrationResponse,
    summary="Change an integration",
    responses={**CHANGE_ANSWERS, **NOT_FOUND},
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/IntegrationFields"}}
            }
        }
    },
)
async def update_integration(
    integration_id: IntegrationId,
    body: Annotated[dict[str, Any], Body()],
    tenant_id: Tenant,
    key_name: KeyName,
    io: Catalog,
) -> Any:
    """The fields given replace the current ones (``placements`` as a whole)."""
    current = await _current(io, tenant_id, integration_id)
    fields = merged(IntegrationFields, current, body)
    item = (integration_id, current.version)
    command = definition_command(tenant_id, key_name, "integration", "update", item, fields)
    return await define(io, command, _reader(io, tenant_id, integration_id))


@router.delete(
    "/{integration_id}",
    response_model=IntegrationResponse,
    summary="Archive an integration",
    responses={**CHANGE_ANSWERS, **NOT_FOUND},
)
async def archive_integration(
    integration_id: IntegrationId, tenant_id: Tenant, key_name: KeyName, io: Catalog
) -> Any:
    """Its flows end: offers of an archived integration are 404."""
    current = await _current(io, tenant_id, integration_id)
    item = (integration_id, current.version)
    command = definition_command(tenant_id, key_name, "integration", "archive", item)
    return await define(io, command, _reader(io, tenant_id, integration_id))
