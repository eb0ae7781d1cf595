"""The gateway's composition root: the FastAPI app with its routers, and how it is served."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from proffer_stream import __version__
from proffer_stream.api.dashboard.mount import install as install_dashboard
from proffer_stream.api.errors import install_error_handlers
from proffer_stream.api.http_protocol import bounded_headers_protocol
from proffer_stream.api.middleware import RequestMetrics
from proffer_stream.api.models import ErrorResponse
from proffer_stream.api.routes import (
    catalog,
    catalog_preview,
    config,
    customers,
    ingest,
    keys,
    members,
    offer_requests,
    offers,
    operations,
    stats,
)
from proffer_stream.api.services import Services
from proffer_stream.core.heap import collect_less_often, freeze_startup_heap
from proffer_stream.core.settings import Settings
from proffer_stream.ingest.models import WebhookEventsRequest

DESCRIPTION = (
    "Autonomous offer engine API. Authenticate with `Authorization: Bearer <key>`; "
    "create a key with `proffer-stream keys create --tenant NAME`."
)


def create_app(settings: Settings) -> FastAPI:
    """The gateway's FastAPI application."""
    services = Services(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await services.start()
        freeze_startup_heap()
        try:
            yield
        finally:
            await app.state.dashboard_pulse.stop()
            await services.stop()

    app = FastAPI(
        title="Proffer Stream",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        responses={
            401: {"model": ErrorResponse, "description": "Missing or invalid API key"},
            422: {"model": ErrorResponse, "description": "Invalid input"},
        },
    )
    app.state.services = services
    install_error_handlers(app)
    app.add_middleware(RequestMetrics)
    for module in (
        ingest,
        customers,
        offer_requests,
        offers,
        stats,
        config,
        keys,
        operations,
        catalog_preview,
        catalog,
        members,
    ):
        app.include_router(module.router)
    install_dashboard(app)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The spec, with the webhook body (read by hand, for speed) among its components."""
    if app.openapi_schema is None:
        spec = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        components = spec.setdefault("components", {}).setdefault("schemas", {})
        body = WebhookEventsRequest.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(body.pop("$defs", {}))
        components[WebhookEventsRequest.__name__] = body
        app.openapi_schema = spec
    return app.openapi_schema


def run_gateway(settings: Settings) -> None:
    """Serve the API on ``gateway_host:gateway_port`` until SIGINT/SIGTERM."""
    collect_less_often()
    uvicorn.run(
        create_app(settings),
        host=settings.gateway_host,
        port=settings.gateway_port,
        log_level=settings.log_level.lower(),
        access_log=False,
        http=bounded_headers_protocol(settings.max_header_bytes),
    )
