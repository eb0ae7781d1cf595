"""How each topic becomes rows: one projection per topic, idempotent writes."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol, TypeAlias

import asyncpg
from aiokafka import ConsumerRecord
from pydantic import ValidationError

from proffer_stream.core.errors import BadRecord
from proffer_stream.core.identity import customer_id
from proffer_stream.db.customers import upsert_customers
from proffer_stream.db.events import EventRow, insert_events
from proffer_stream.db.offers import apply_command_outcomes, apply_offer_events
from proffer_stream.db.tenant_config import apply_config_changes
from proffer_stream.ingest.records import describe_errors, read_event_record, read_message
from proffer_stream.offers.config import ConfigChange
from proffer_stream.offers.models import CommandOutcome, OfferEvent
from proffer_stream.signals.models import CustomerSignals

log = logging.getLogger(__name__)

Record: TypeAlias = ConsumerRecord  # of bytes keys and values


class Projection(Protocol):
    """Writes the records of one topic into PostgreSQL; a replay changes nothing."""

    topic: str
    table: str

    async def write(self, conn: asyncpg.Connection, records: Sequence[Record]) -> int:
        """Write the records' rows in the caller's transaction; return the rows changed."""
        ...


class EventsProjection:
    """``proffer.events`` -> ``events``: every event once, by tenant, customer and id.

    Records that do not validate are skipped here; the signals agent dead-letters them.
    """

    table = "events"

    def __init__(self, topic: str) -> None:
        self.topic = topic

    async def write(self, conn: asyncpg.Connection, records: Sequence[Record]) -> int:
        return await insert_events(conn, [row for record in records for row in _rows(record)])


def _rows(record: Record) -> list[EventRow]:
    try:
        read = read_event_record(
            record.key,
            record.value,
            partition=record.partition,
            offset=record.offset,
            timestamp_ms=record.timestamp,
        )
    except BadRecord:
        return []
    tenant, external = read.customer_key
    internal = customer_id(tenant, external)
    return [EventRow(tenant, internal, event) for event in read.events]


class CustomersProjection:
    """The signals changelog -> ``customers``: the latest snapshot of each customer."""

    table = "customers"

    def __init__(self, topic: str) -> None:
        self.topic = topic

    async def write(self, conn: asyncpg.Connection, records: Sequence[Record]) -> int:
        latest: dict[tuple[str, int], CustomerSignals] = {}
        for record in records:
            snapshot = _snapshot(record)
            if snapshot is not None:
                latest[(snapshot.tenant_id, snapshot.customer_id)] = snapshot
        upserted = await upsert_customers(conn, list(latest.values()))
        if upserted < len(latest):
            log.error(
                "%d customer profile(s) not projected: their internal id is held by another"
                " external id of the tenant (a hash collision)",
                len(latest) - upserted,
            )
        return upserted


def _snapshot(record: Record) -> CustomerSignals | None:
    if record.value is None:
        return None
    try:
        return CustomerSignals.model_validate_json(record.value)
    except ValidationError as exc:
        raise BadRecord("invalid_message", describe_errors(exc.errors())) from None


class OffersProjection:
    """``proffer.offers`` -> ``offers``, ``offer_events`` and ``decisions``.

    Idempotent and version-ordered: each event and decision once, each offer at its
    highest version.
    """

    table = "offer_events"

    def __init__(self, topic: str) -> None:
        self.topic = topic

    async def write(self, conn: asyncpg.Connection, records: Sequence[Record]) -> int:
        events = [read_message(OfferEvent, record.value) for record in records]
        return await apply_offer_events(conn, events)


class CommandOutcomesProjection:
    """``proffer.offer-command-outcomes`` -> ``offer_commands``: what the gateway waits for."""

    table = "offer_commands"

    def __init__(self, topic: str) -> None:
        self.topic = topic

    async def write(self, conn: asyncpg.Connection, records: Sequence[Record]) -> int:
        outcomes = [read_message(CommandOutcome, record.value) for record in records]
        return await apply_command_outcomes(conn, outcomes)


class TenantConfigProjection:
    """``proffer.tenant-config`` -> ``tenant_config``: each tenant's latest rules and policy."""

    table = "tenant_config"

    def __init__(self, topic: str) -> None:
        self.topic = topic

    async def write(self, conn: asyncpg.Connection, records: Sequence[Record]) -> int:
        changes = [read_message(ConfigChange, r.value) for r in records if r.value is not None]
        return await apply_config_changes(conn, changes)
