"""Dependencies of the routes, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

import asyncpg
from fastapi import Depends, Request

from proffer_stream.api.errors import ApiError
from proffer_stream.api.services import EventPublisher, Services
from proffer_stream.api.wire import key_of
from proffer_stream.core.settings import Settings
from proffer_stream.db.replies import ReplyListener

# Dependencies are ``async def`` even when they do not await: FastAPI runs a plain
# ``def`` dependency in a thread pool, a thread hop per dependency per request.


def _services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def _services(request: Request) -> Services:
    return _services_of(request)


async def _pool(request: Request) -> asyncpg.Pool:
    return _services_of(request).pool


async def _publisher(request: Request) -> EventPublisher:
    return _services_of(request).publisher


async def _replies(request: Request) -> ReplyListener:
    return _services_of(request).replies


async def _settings(request: Request) -> Settings:
    return _services_of(request).settings


async def require_tenant(request: Request) -> str:
    """The tenant of the request's API key, or a 401/503 answer."""
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiError(401, "missing_api_key", "Send 'Authorization: Bearer <your API key>'.")
    found = await _services_of(request).keys.owner_of(key.strip())
    if found is None:
        raise ApiError(401, "invalid_api_key", "The API key is not valid or was revoked.")
    request.state.key_name = found.name
    return found.tenant_id


async def require_tenant_any_scheme(request: Request) -> str:
    """The tenant of the request's API key, sent as ``Bearer`` or (as the billing
    platform's clients send it) as the HTTP Basic username; or a 401/503 answer."""
    key = key_of(request.headers.get("authorization", ""))
    if key is None:
        raise ApiError(
            401,
            "missing_api_key",
            "Send 'Authorization: Bearer <your API key>', or the key as the Basic username.",
        )
    found = await _services_of(request).keys.owner_of(key)
    if found is None:
        raise ApiError(401, "invalid_api_key", "The API key is not valid or was revoked.")
    request.state.key_name = found.name
    return found.tenant_id


async def tenant_or_signup(request: Request) -> str | None:
    """The caller's tenant; None for a caller without a key where sign-up is on."""
    if not request.headers.get("authorization") and _services_of(request).settings.signup_enabled:
        return None
    return await require_tenant(request)


Tenant = Annotated[str, Depends(require_tenant)]
AnyTenant = Annotated[str, Depends(require_tenant_any_scheme)]
OptionalTenant = Annotated[str | None, Depends(tenant_or_signup)]
Db = Annotated[asyncpg.Pool, Depends(_pool)]
Publisher = Annotated[EventPublisher, Depends(_publisher)]
Replies = Annotated[ReplyListener, Depends(_replies)]
AppSettings = Annotated[Settings, Depends(_settings)]
ServicesDep = Annotated[Services, Depends(_services)]


async def key_name(request: Request, tenant_id: Tenant) -> str:
    """The name of the caller's API key, to record who changed what."""
    name: str = request.state.key_name
    return name


KeyName = Annotated[str, Depends(key_name)]
