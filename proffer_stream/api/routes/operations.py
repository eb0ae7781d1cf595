"""Operations: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
import logging

from aiokafka.errors import KafkaError
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from proffer_stream.api.deps import Db, Publisher, ServicesDep
from proffer_stream.api.models import Readiness
from proffer_stream.api.services import Services
from proffer_stream.db.pool import TRANSIENT_ERRORS

log = logging.getLogger(__name__)

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness")
async def check_health() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Readiness: PostgreSQL and Kafka reachable, worker and sink serving and keeping up",
    responses={503: {"model": Readiness}},
)
async def check_readiness(db: Db, publisher: Publisher, services: ServicesDep) -> JSONResponse:
    """Which dependency is down or stalled, never its internals (those go to the log)."""
    checks: dict[str, str] = {"postgres": "ok", "kafka": "ok"}
    try:
        await asyncio.wait_for(db.fetchval("SELECT 1"), 2.0)
    except TRANSIENT_ERRORS as exc:
        log.warning("readiness: PostgreSQL unavailable: %r", exc)
        checks["postgres"] = "unavailable"
    try:
        await asyncio.wait_for(publisher.check(), 2.0)
    except (TimeoutError, KafkaError) as exc:
        log.warning("readiness: Kafka unavailable: %r", exc)
        checks["kafka"] = "unavailable"
    if checks["kafka"] == "ok":
        checks.update(await _consumers(services))
    ready = all(value == "ok" for value in checks.values())
    body = Readiness(ready=ready, checks=checks)  # type: ignore[arg-type]
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


async def _consumers(services: Services) -> dict[str, str]:
    """Each consumer group's progress: starting (not yet seen with every partition
    assigned and caught up since the gateway started), else ok, or stalled with lag."""
    try:
        starting = await asyncio.wait_for(services.progress.starting(), 2.0)
        stalled = await asyncio.wait_for(services.progress.stalled(), 2.0)
    except (TimeoutError, KafkaError) as exc:
        log.warning("readiness: cannot read consumer progress: %r", exc)
        return {"worker": "unavailable", "sink": "unavailable"}
    for name, state in starting.items():
        log.info("readiness: the %s is starting: %s", name, state.describe())
    for name, partitions in stalled.items():
        if partitions:
            where = ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions)
            log.warning("readiness: the %s has lag and made no progress on %s", name, where)
    return {
        name: "starting" if name in starting else "stalled" if partitions else "ok"
        for name, partitions in stalled.items()
    }


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=PlainTextResponse,
    responses={
        200: {
            "description": f"Prometheus' text exposition format ({CONTENT_TYPE_LATEST}).",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
async def get_metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
