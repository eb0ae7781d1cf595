"""Kafka topics: their names, their creation, and how a ``proffer.events`` record is read."""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError
from pydantic import ValidationError

from proffer_stream.identity import normalized_events, partition_key
from proffer_stream.models import DeadLetter, EventBatch, NormalizedEvent
from proffer_stream.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopicNames:
    """Every topic of the pipeline, with the configured prefix applied."""

    events: str
    offer_requests: str
    offers: str
    deadletter: str
    signals_changelog: str

    def all(self) -> list[str]:
        return [
            self.events,
            self.offer_requests,
            self.offers,
            self.deadletter,
            self.signals_changelog,
        ]


def worker_app_id(settings: Settings) -> str:
    """The Faust app id, which is also the worker's consumer group."""
    return f"{settings.topic_prefix}{settings.worker_id}"


def topic_names(settings: Settings) -> TopicNames:
    prefix = settings.topic_prefix
    return TopicNames(
        events=f"{prefix}proffer.events",
        offer_requests=f"{prefix}proffer.offer-requests",
        offers=f"{prefix}proffer.offers",
        deadletter=f"{prefix}proffer.deadletter",
        # Faust names a table's changelog "<app id>-<table>-changelog".
        signals_changelog=f"{worker_app_id(settings)}-signals-changelog",
    )


async def wait_for_broker(bootstrap_servers: str, timeout: float = 30.0) -> None:
    """Wait until the broker answers metadata requests, or raise ``ConnectionError``."""
    deadline = time.monotonic() + timeout
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=3000)
        try:
            await admin.start()
            await admin.list_topics()
            return
        except KafkaError as exc:
            if time.monotonic() > deadline:
                raise ConnectionError(
                    f"Kafka at {bootstrap_servers} did not answer: {exc}"
                ) from exc
            await asyncio.sleep(0.2)
        finally:
            await admin.close()


async def ensure_topics(settings: Settings) -> list[str]:
    """Create the pipeline's topics that do not exist yet; return the names created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in topic_names(settings).all() if name not in existing]
        for name in missing:
            try:
                await admin.create_topics(
                    [NewTopic(name, settings.partitions, settings.replication_factor)]
                )
            except TopicAlreadyExistsError:
                pass
        return missing
    except KafkaConnectionError as exc:
        raise ConnectionError(f"Kafka at {settings.bootstrap_servers}: {exc}") from exc
    finally:
        await admin.close()


# --- Reading proffer.events records --------------------------------------------------------


@dataclass(frozen=True)
class EventRecord:
    """A valid ``proffer.events`` record, its events normalised."""

    batch: EventBatch
    events: list[NormalizedEvent]
    partition: int
    offset: int

    @property
    def customer_key(self) -> tuple[str, str]:
        return (self.batch.tenant_id, self.batch.customer.id)


class BadRecord(Exception):
    """A record that cannot be processed; it belongs on the dead-letter topic."""

    def __init__(self, reason: str, error: str) -> None:
        super().__init__(f"{reason}: {error}")
        self.reason = reason
        self.error = error


def read_event_record(
    key: bytes | None, value: bytes | None, *, partition: int, offset: int, timestamp_ms: int
) -> EventRecord:
    """Validate one ``proffer.events`` record, or raise :class:`BadRecord` saying why."""
    try:
        batch = EventBatch.model_validate_json(value or b"")
    except ValidationError as exc:
        invalid_json = any(e["type"] == "json_invalid" for e in exc.errors())
        raise BadRecord(
            "invalid_json" if invalid_json else "invalid_message", _describe(exc)
        ) from None
    expected = partition_key(batch.tenant_id, batch.customer.id)
    if key != expected:
        raise BadRecord(
            "wrong_key",
            f"key is {key!r}; it must be {expected!r} (<tenant_id>:<customer.id>) so that"
            " all of a customer's events share a partition",
        )
    events = normalized_events(batch, partition=partition, offset=offset, timestamp_ms=timestamp_ms)
    return EventRecord(batch, events, partition, offset)


def _describe(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '(message)'}: {e['msg']}" for e in exc.errors()
    )


def dead_letter(
    error: BadRecord,
    *,
    stage: str,
    topic: str,
    partition: int,
    offset: int,
    timestamp_ms: int | None,
    key: bytes | None,
    value: bytes | None,
) -> DeadLetter:
    """The dead-letter message for a record that could not be processed."""
    return DeadLetter(
        reason=error.reason,  # type: ignore[arg-type]
        error=error.error,
        stage=stage,
        source_topic=topic,
        partition=partition,
        offset=offset,
        timestamp_ms=timestamp_ms,
        key_b64=base64.b64encode(key).decode() if key is not None else None,
        value_b64=base64.b64encode(value or b"").decode(),
        failed_at=datetime.now(UTC),
    )
