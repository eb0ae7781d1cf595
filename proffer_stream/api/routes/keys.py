"""``/api/keys``: more API keys for the caller's tenant, or sign-up where it is on."""

from __future__ import annotations

import logging

from fastapi import APIRouter

from proffer_stream.api.deps import Db, OptionalTenant
from proffer_stream.api.json_body import JsonBodyRoute
from proffer_stream.api.models import NOT_JSON, ApiKeyCreate, ApiKeyCreated
from proffer_stream.db import keys

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/keys", tags=["keys"], route_class=JsonBodyRoute)


@router.post(
    "",
    response_model=ApiKeyCreated,
    status_code=201,
    summary="Create an API key: another for your tenant, or a new tenant's first",
    responses=NOT_JSON,
)
async def create_key(
    tenant_id: OptionalTenant, db: Db, body: ApiKeyCreate | None = None
) -> ApiKeyCreated:
    """The key is shown once in the answer; only its hash is stored.

    With a key: another key of the caller's tenant. Without one, where self-service
    sign-up is on (``PROFFER_SIGNUP_ENABLED``; on for ``proffer-stream up``): a new
    tenant and its first key. Otherwise 401.
    """
    if tenant_id is None:
        tenant_id = keys.new_tenant_id()
        log.info("sign-up: new tenant %s", tenant_id)
    created = await keys.create_key(db, tenant_id, (body or ApiKeyCreate()).name)
    log.info("created API key %d for tenant %s", created.id, tenant_id)
    return ApiKeyCreated(**created.model_dump())
