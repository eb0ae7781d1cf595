"""The gateway's composition root: the FastAPI app with its routers, and how it is served."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from fastapi.telemetry import TelemetryConfig

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
    decisions,
    ingest,
    integrations,
    keys,
    members,
    offer_requests,
    offers,
    operations,
    personalized_offers,
    placements,
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
        # FastAPI's own OpenTelemetry asks the providers whether they are configured on
        # every request: 8% of the gateway's CPU under catalog uses. Off unless asked
        # for (PROFFER_OPENTELEMETRY=true); our metrics are Prometheus' (/metrics).
        telemetry=_telemetry(settings.opentelemetry),
        generate_unique_id_function=operation_id,
        separate_input_output_schemas=False,
        responses={
            401: {"model": ErrorResponse, "description": "Missing or invalid API key"},
            422: {"model": ErrorResponse, "description": "Invalid input"},
        },
    )
    app.state.services = services
    install_error_handlers(app)
    app.add_middleware(RequestMetrics)
    # Routes are matched one by one in this order (each match costs a regex and FastAPI's
    # bookkeeping: 16% of the gateway's CPU under catalog uses with the members' routes
    # last), so the hot paths come first: decisions answered while a page loads, a
    # member's actions, ingest, offer changes.
    for module in (
        personalized_offers,
        placements,
        members,
        ingest,
        offer_requests,
        offers,
        catalog_preview,
        catalog,
        customers,
        stats,
        config,
        keys,
        operations,
        decisions,
        integrations,
    ):
        app.include_router(module.router)
    install_dashboard(app)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _telemetry(enabled: bool) -> TelemetryConfig:
    """FastAPI's OpenTelemetry instrumentation, on or off."""
    return {"tracing": enabled, "metrics": enabled, "logs": enabled}


def operation_id(route: APIRoute) -> str:
    """A route's operationId: its name in camelCase (``ingest_events`` -> ``ingestEvents``),
    what a client generated from the spec calls it. Route names are unique."""
    first, *rest = route.name.split("_")
    return first + "".join(word.capitalize() for word in rest)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The spec, with the webhook body (read by hand, for speed) among its components."""
    if app.openapi_schema is None:
        spec = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            separate_input_output_schemas=app.separate_input_output_schemas,
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
