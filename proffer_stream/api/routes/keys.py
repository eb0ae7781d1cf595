"""``/api/keys``: more API keys for the caller's tenant."""

from __future__ import annotations

import logging

from fastapi import APIRouter

from proffer_stream.api.deps import Db, Tenant
from proffer_stream.api.models import ApiKeyCreate, ApiKeyCreated, ErrorResponse
from proffer_stream.db import keys

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/keys", tags=["keys"])


@router.post(
    "",
    response_model=ApiKeyCreated,
    status_code=201,
    summary="Create another API key for your tenant",
    responses={400: {"model": ErrorResponse, "description": "The body is not UTF-8 JSON"}},
)
async def create_key(tenant_id: Tenant, db: Db, body: ApiKeyCreate | None = None) -> ApiKeyCreated:
    """The key is shown once in the answer; only its hash is stored."""
    created = await keys.create_key(db, tenant_id, (body or ApiKeyCreate()).name)
    log.info("created API key %d for tenant %s", created.id, tenant_id)
    return ApiKeyCreated(**created.model_dump())
