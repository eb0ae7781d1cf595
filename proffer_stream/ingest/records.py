"""Reading a ``proffer.events`` record: validate it, check its key, settle its events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from proffer_stream.core.errors import BadRecord
from proffer_stream.core.identity import partition_key, record_event_id
from proffer_stream.core.settings import Settings
from proffer_stream.core.types import CustomerKey
from proffer_stream.ingest.models import EventBatch, NormalizedEvent

M = TypeVar("M", bound=BaseModel)


@dataclass(slots=True)
class EventRecord:
    """A valid ``proffer.events`` record, its events normalised (read-only by
    convention: one per record, and a frozen dataclass's ``__init__`` costs twice as
    much)."""

    batch: EventBatch
    events: list[NormalizedEvent]
    partition: int
    offset: int

    @property
    def customer_key(self) -> CustomerKey:
        return (self.batch.tenant_id, self.batch.customer.id)


@dataclass(frozen=True, slots=True)
class RecordLimits:
    """What one ``proffer.events`` record may hold: the gateway's limits, so that a record
    from any producer is held to what an HTTP request is."""

    max_bytes: int
    max_events: int

    @classmethod
    def of(cls, settings: Settings) -> RecordLimits:
        """``PROFFER_MAX_EVENTS_PER_REQUEST``, and the most bytes the gateway writes."""
        return cls(settings.max_record_bytes, settings.max_events_per_request)

    def check_size(self, value: bytes | None) -> None:
        """Raise :class:`BadRecord` ``too_large`` for a value over :attr:`max_bytes`."""
        size = len(value or b"")
        if size > self.max_bytes:
            raise BadRecord(
                "too_large",
                f"the record is {size} bytes; at most {self.max_bytes} are accepted"
                " (what the gateway writes for a request of PROFFER_MAX_BODY_BYTES)",
            )

    def check_events(self, batch: EventBatch) -> None:
        """Raise :class:`BadRecord` ``too_many_events`` over :attr:`max_events` events."""
        if len(batch.events) > self.max_events:
            raise BadRecord(
                "too_many_events",
                f"events: {len(batch.events)} events in one record; at most"
                f" {self.max_events} are accepted (PROFFER_MAX_EVENTS_PER_REQUEST)",
            )


def read_event_record(
    key: bytes | None,
    value: bytes | None,
    *,
    partition: int,
    offset: int,
    timestamp_ms: int,
    limits: RecordLimits,
) -> EventRecord:
    """Validate one ``proffer.events`` record, or raise :class:`BadRecord` saying why.

    It is held to what the gateway takes over HTTP (``limits``); the tenant's existence
    is checked by the caller, which can ask PostgreSQL.
    """
    limits.check_size(value)
    batch = read_message(EventBatch, value)
    limits.check_events(batch)
    require_customer_key(key, batch.tenant_id, batch.customer.id)
    events = normalized_events(batch, partition=partition, offset=offset, timestamp_ms=timestamp_ms)
    return EventRecord(batch, events, partition, offset)


def read_message(model: type[M], value: bytes | None) -> M:
    """A record's value as ``model``, or :class:`BadRecord` (invalid JSON, or invalid
    message) saying where and what."""
    try:
        return model.model_validate_json(value or b"")
    except ValidationError as exc:
        invalid_json = any(e["type"] == "json_invalid" for e in exc.errors())
        raise BadRecord(
            "invalid_json" if invalid_json else "invalid_message", describe_errors(exc.errors())
        ) from None


def require_customer_key(
    key: bytes | None, tenant_id: str, external_id: str, field: str = "customer.id"
) -> None:
    """Raise :class:`BadRecord` unless ``key`` is the customer's partition key.

    ``field`` names where the message holds the customer's id.
    """
    expected = partition_key(tenant_id, external_id)
    if key != expected:
        raise BadRecord(
            "wrong_key",
            f"key is {key!r}; it must be {expected!r} (<tenant_id>:<{field}>) so that"
            " all of a customer's records share a partition",
        )


def normalized_events(
    batch: EventBatch, *, partition: int, offset: int, timestamp_ms: int
) -> list[NormalizedEvent]:
    """The batch's events with ids and times settled the same way on every replay."""
    received_at = batch.received_at or datetime.fromtimestamp(timestamp_ms / 1000, UTC)
    return [
        NormalizedEvent(
            id=event.id or record_event_id(timestamp_ms, partition, offset, index),
            type=event.type,
            data=event.data,
            occurred_at=event.occurred_at or received_at,
            received_at=received_at,
        )
        for index, event in enumerate(batch.events)
    ]


def error_location(parts: tuple[int | str, ...]) -> str:
    """Where in the input an error is: ``('events', 1, 'type')`` -> ``events[1].type``."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(body)"


def describe_errors(errors: list[Any]) -> str:
    """Pydantic errors as one line: ``events[0].type: Field required; ...``."""
    return "; ".join(f"{error_location(tuple(e['loc']))}: {e['msg']}" for e in errors)
