"""The HTTP gateway: ingests events onto Kafka and serves the API from PostgreSQL.

Stateless: run as many as needed. A webhook call becomes exactly one ``proffer.events``
record (so a request is ingested whole or not at all) and is answered only once Kafka
has it; when Kafka does not take it in time the answer is 503 and nothing is accepted.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

import asyncpg
import uvicorn
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from proffer_stream import __version__, metrics, storage
from proffer_stream.identity import customer_id, new_request_id, partition_key
from proffer_stream.models import (
    ApiKeyCreate,
    ApiKeyCreated,
    CustomerOut,
    CustomerResponse,
    CustomerSignals,
    ErrorBody,
    ErrorDetail,
    ErrorResponse,
    EventBatch,
    EventIn,
    EventsResponse,
    IngestResponse,
    StoredEvent,
    WebhookEventsRequest,
)
from proffer_stream.settings import Settings
from proffer_stream.signals import signals_out
from proffer_stream.topics import topic_names

log = logging.getLogger(__name__)

KEY_CACHE_SECONDS = 30.0


class ApiError(Exception):
    """An error answered as JSON: ``{"success": false, "error": {code, message, details}}``."""

    def __init__(
        self, status: int, code: str, message: str, details: list[ErrorDetail] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = ErrorResponse(
            error=ErrorBody(code=code, message=message, details=details or [])
        )


def _error_response(error: ApiError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error.body.model_dump(), status_code=error.status, headers=headers)


def _loc(parts: tuple[Any, ...]) -> str:
    """``('events', 1, 'type')`` -> ``events[1].type``."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(body)"


def _details(errors: list[dict[str, Any]], drop_prefix: str | None = None) -> list[ErrorDetail]:
    details = []
    for error in errors:
        loc = tuple(error["loc"])
        if drop_prefix and loc and loc[0] == drop_prefix:
            loc = loc[1:]
        details.append(ErrorDetail(loc=_loc(loc), message=error["msg"]))
    return details


class Gateway:
    """Connections and caches shared by the request handlers."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topics = topic_names(settings)
        self.pool: asyncpg.Pool | None = None
        self.producer: AIOKafkaProducer | None = None
        self._keys: dict[str, tuple[str, float]] = {}

    async def start(self) -> None:
        self.pool = await storage.connect_pool(self.settings.database_url)
        timeout_ms = int(self.settings.produce_timeout_seconds * 1000)
        self.producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.bootstrap_servers,
            acks="all",
            linger_ms=2,
            request_timeout_ms=timeout_ms,
            max_request_size=2 * self.settings.max_body_bytes,
        )
        await self.producer.start()
        log.info("gateway connected: topic %s", self.topics.events)

    async def stop(self) -> None:
        if self.producer is not None:
            await self.producer.stop()
        if self.pool is not None:
            await self.pool.close()

    async def tenant_for(self, key: str) -> str | None:
        cached = self._keys.get(key)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        tenant = await storage.tenant_for_key(self.db, key)
        if tenant is not None:
            self._keys[key] = (tenant, time.monotonic() + KEY_CACHE_SECONDS)
        return tenant

    @property
    def db(self) -> asyncpg.Pool:
        assert self.pool is not None, "gateway not started"
        return self.pool

    async def kafka_metadata(self) -> None:
        """Ask the brokers for fresh metadata; raises ``KafkaError`` when none answers."""
        assert self.producer is not None, "gateway not started"
        await self.producer.client.fetch_all_metadata()

    async def publish(self, key: bytes, value: bytes) -> None:
        """Put one record on ``proffer.events`` and wait until Kafka has it, or raise 503."""
        assert self.producer is not None, "gateway not started"
        try:
            delivery = await self.producer.send(self.topics.events, value=value, key=key)
            await asyncio.wait_for(delivery, self.settings.produce_timeout_seconds)
        except (TimeoutError, KafkaError) as exc:
            log.warning("Kafka did not take a record: %r", exc)
            raise ApiError(
                503,
                "broker_unavailable",
                "The event broker is unavailable; nothing was ingested. "
                "Retry later (events with an id are counted once).",
            ) from exc


async def require_tenant(request: Request) -> str:
    """The tenant of the request's API key, or a 401/503 answer."""
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiError(401, "missing_api_key", "Send 'Authorization: Bearer <your API key>'.")
    gateway: Gateway = request.app.state.gateway
    try:
        found = await gateway.tenant_for(key.strip())
    except (OSError, asyncpg.PostgresError) as exc:
        raise ApiError(503, "database_unavailable", "Cannot check the API key now.") from exc
    if found is None:
        raise ApiError(401, "invalid_api_key", "The API key is not valid or was revoked.")
    return found


Tenant = Annotated[str, Depends(require_tenant)]


def create_app(settings: Settings) -> FastAPI:
    """The gateway's FastAPI application."""
    gateway = Gateway(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await gateway.start()
        try:
            yield
        finally:
            await gateway.stop()

    app = FastAPI(
        title="Proffer Stream",
        version=__version__,
        description=(
            "Autonomous offer engine API. Authenticate with `Authorization: Bearer <key>`; "
            "create a key with `proffer-stream keys create --tenant NAME`."
        ),
        lifespan=lifespan,
        responses={
            401: {"model": ErrorResponse, "description": "Missing or invalid API key"},
            422: {"model": ErrorResponse, "description": "Invalid input"},
        },
    )
    app.state.gateway = gateway
    _install_error_handlers(app)
    app.add_middleware(RequestMetrics)

    @app.post(
        "/api/webhook/events",
        response_model=IngestResponse,
        tags=["ingest"],
        summary="Send a customer's behavioural events",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": WebhookEventsRequest.model_json_schema(
                            ref_template="#/components/schemas/{model}"
                        )
                    }
                },
            }
        },
        responses={
            400: {"model": ErrorResponse},
            413: {"model": ErrorResponse},
            503: {"model": ErrorResponse},
        },
    )
    async def ingest_events(request: Request, tenant_id: Tenant) -> IngestResponse:
        """Creates or updates the customer and ingests the events, all or nothing.

        Any event type is accepted; an event with an `id` is counted once however often
        it is sent. Answered once the events are durably on Kafka.
        """
        body = await _read_body(request, settings.max_body_bytes)
        payload = _parse_webhook(body, settings.max_events_per_request)
        received_at = datetime.now(UTC)
        batch = EventBatch(
            tenant_id=tenant_id,
            customer=payload.customer,
            events=_settled(payload.events, received_at),
            received_at=received_at,
        )
        await gateway.publish(
            partition_key(tenant_id, payload.customer.id), batch.model_dump_json().encode()
        )
        metrics.EVENTS_ACCEPTED.labels(tenant_id).inc(len(batch.events))
        return IngestResponse(
            customer_id=customer_id(tenant_id, payload.customer.id),
            events_ingested=len(batch.events),
        )

    @app.get("/api/customers", tags=["customers"], summary="List customers")
    async def list_customers(
        tenant_id: Tenant,
        limit: Annotated[int, Query(ge=1, le=100)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        """The tenant's customers with their signals, most recently active first."""
        rows = await storage.list_customers(gateway.db, tenant_id, limit=limit, offset=offset)
        now = datetime.now(UTC)
        return {
            "success": True,
            "customers": [_customer_out(row, now).model_dump(mode="json") for row in rows],
            "limit": limit,
            "offset": offset,
        }

    @app.get(
        "/api/customers/external/{external_id}",
        response_model=CustomerResponse,
        tags=["customers"],
        summary="A customer and their signals, by your external id",
        responses={404: {"model": ErrorResponse}},
    )
    async def get_customer_by_external_id(external_id: str, tenant_id: Tenant) -> CustomerResponse:
        row = await storage.get_customer_by_external_id(gateway.db, tenant_id, external_id)
        return _customer_response(row, f"external id {external_id!r}")

    @app.get(
        "/api/customers/{customer_id}",
        response_model=CustomerResponse,
        tags=["customers"],
        summary="A customer and their signals, by internal id",
        responses={404: {"model": ErrorResponse}},
    )
    async def get_customer(customer_id: int, tenant_id: Tenant) -> CustomerResponse:
        row = await storage.get_customer(gateway.db, tenant_id, customer_id)
        return _customer_response(row, f"id {customer_id}")

    @app.get(
        "/api/customers/{customer_id}/events",
        response_model=EventsResponse,
        tags=["customers"],
        summary="A customer's stored events, newest first",
    )
    async def list_customer_events(
        customer_id: int,
        tenant_id: Tenant,
        limit: Annotated[int, Query(ge=1, le=100)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> EventsResponse:
        rows = await storage.list_events(
            gateway.db, tenant_id, customer_id, limit=limit, offset=offset
        )
        events = [StoredEvent.model_validate({**row, "data": _json(row["data"])}) for row in rows]
        return EventsResponse(events=events, limit=limit, offset=offset)

    @app.post(
        "/api/keys",
        response_model=ApiKeyCreated,
        status_code=201,
        tags=["keys"],
        summary="Create another API key for your tenant",
    )
    async def create_key(tenant_id: Tenant, body: ApiKeyCreate | None = None) -> ApiKeyCreated:
        """The key is shown once in the answer; only its hash is stored."""
        created = await storage.create_key(gateway.db, tenant_id, (body or ApiKeyCreate()).name)
        log.info("created API key %d for tenant %s", created.id, tenant_id)
        return ApiKeyCreated(
            key=created.key,
            id=created.id,
            name=created.name,
            tenant_id=created.tenant_id,
            created_at=created.created_at,
        )

    @app.get("/healthz", tags=["operations"], summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], summary="Readiness: PostgreSQL and Kafka reachable")
    async def readyz() -> JSONResponse:
        checks = {"postgres": "ok", "kafka": "ok"}
        try:
            await gateway.db.fetchval("SELECT 1")
        except (OSError, asyncpg.PostgresError) as exc:
            checks["postgres"] = str(exc)
        try:
            await asyncio.wait_for(gateway.kafka_metadata(), 2.0)
        except (TimeoutError, KafkaError) as exc:
            checks["kafka"] = repr(exc)
        ready = all(value == "ok" for value in checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics")
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


async def _read_body(request: Request, limit: int) -> bytes:
    too_large = ApiError(
        413, "body_too_large", f"The request body is larger than {limit} bytes; send fewer events."
    )
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


def _parse_webhook(body: bytes, max_events: int) -> WebhookEventsRequest:
    try:
        payload = WebhookEventsRequest.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors()
        if any(error["type"] == "json_invalid" for error in errors):
            raise ApiError(
                400, "invalid_json", "The body is not valid JSON.", _details(errors)
            ) from None
        raise ApiError(
            422, "validation_error", "The events were not ingested.", _details(errors)
        ) from None
    if len(payload.events) > max_events:
        raise ApiError(
            413,
            "too_many_events",
            f"{len(payload.events)} events in one request; at most {max_events} are accepted.",
            [ErrorDetail(loc="events", message=f"at most {max_events} items")],
        )
    return payload


def _settled(events: list[EventIn], received_at: datetime) -> list[EventIn]:
    """The events, each with an id and a time, so that every replay of the record agrees.

    An event without an id gets ``<request id>-<position>``: a record our producer
    writes twice (a retry after a lost acknowledgement) then still counts once.
    Set in place: the events are this request's own, and a copy of each cost more than
    parsing it.
    """
    request_id = new_request_id()
    for index, event in enumerate(events):
        if event.id is None:
            event.id = f"{request_id}-{index}"
        if event.occurred_at is None:
            event.occurred_at = received_at
    return events


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _customer_out(row: asyncpg.Record, now: datetime) -> CustomerOut:
    state = CustomerSignals.model_validate_json(row["signals"])
    return CustomerOut(
        id=row["id"],
        external_id=row["external_id"],
        email=row["email"],
        name=row["name"],
        metadata=_json(row["metadata"]),
        first_seen_at=row["first_seen_at"],
        last_seen_at=row["last_seen_at"],
        signals=signals_out(state, now),
    )


def _customer_response(row: asyncpg.Record | None, what: str) -> CustomerResponse:
    if row is None:
        raise ApiError(404, "customer_not_found", f"No customer with {what} in your tenant.")
    return CustomerResponse(customer=_customer_out(row, datetime.now(UTC)))


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, error: ApiError) -> JSONResponse:
        headers = {"Retry-After": "1"} if error.status == 503 else None
        return _error_response(error, headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = _details(list(exc.errors()))
        return _error_response(ApiError(422, "validation_error", "Invalid request.", details))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error_response(ApiError(exc.status_code, code, str(exc.detail)))


class RequestMetrics:
    """ASGI middleware: counts and times every HTTP request by route template and status.

    Plain ASGI rather than ``@app.middleware("http")``, whose request/response wrapping
    cost about a tenth of the gateway's CPU under load.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"]
            metrics.HTTP_SECONDS.labels(method, route).observe(time.perf_counter() - started)
            metrics.HTTP_REQUESTS.labels(method, route, str(status)).inc()


def run_gateway(settings: Settings) -> None:
    """Serve the API on ``gateway_host:gateway_port`` until SIGINT/SIGTERM."""
    uvicorn.run(
        create_app(settings),
        host=settings.gateway_host,
        port=settings.gateway_port,
        log_level=settings.log_level.lower(),
        access_log=False,
    )
