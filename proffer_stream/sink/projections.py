"""How each topic becomes rows: one projection per topic, idempotent writes."""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import NamedTuple, Protocol, TypeAlias, TypeVar

import asyncpg
from aiokafka import ConsumerRecord
from pydantic import ValidationError

from proffer_stream.catalog.models import (
    CatalogDefinition,
    CatalogEvent,
    CollectionDefinition,
    Definition,
    IntegrationDefinition,
)
from proffer_stream.catalog.store import target_of
from proffer_stream.core.errors import BadRecord
from proffer_stream.core.identity import customer_id
from proffer_stream.db.catalog import apply_catalog_definitions, apply_catalog_events
from proffer_stream.db.customers import upsert_customers
from proffer_stream.db.decisions import apply_decision_records
from proffer_stream.db.events import StagedEvent, insert_events, staged_event
from proffer_stream.db.offers import apply_command_outcomes, apply_offer_events
from proffer_stream.db.replies import (
    Notice,
    catalog_definition_key,
    command_key,
    config_version_key,
    decision_key,
    decision_made_key,
    events_key,
    feed_key,
    fulfillment_key,
    offer_key,
)
from proffer_stream.db.tenant_config import apply_config_changes, apply_config_outcomes
from proffer_stream.decisions.models import DecisionMade, DecisionReaction, DecisionRecord
from proffer_stream.ingest.records import (
    EventRecord,
    RecordLimits,
    describe_errors,
    read_event_record,
    read_message,
)
from proffer_stream.offers.config import ConfigChange, ConfigOutcome
from proffer_stream.offers.models import CommandOutcome, OfferEvent
from proffer_stream.signals.models import CustomerColumns

log = logging.getLogger(__name__)

Record: TypeAlias = ConsumerRecord  # of bytes keys and values
Item = TypeVar("Item")

DATA_ERRORS: tuple[type[Exception], ...] = (BadRecord, asyncpg.PostgresError, ValueError)
"""Errors of reading or writing a record that mean bad data, not an outage."""


class Projection(Protocol[Item]):
    """Writes the records of one topic into PostgreSQL; a replay changes nothing.

    Reading (parse, validate, build rows: CPU only) is apart from writing (PostgreSQL
    only), so that the sink reads a batch while the one before is being written.
    """

    topic: str
    table: str
    latest_per_key: bool
    """Each record is the whole state of its key: of a batch's records with a value, only
    the last of each key needs reading (:func:`latest_of_each_key`)."""

    def read(self, records: Sequence[Record]) -> list[Item]:
        """What the records hold for the table; :class:`BadRecord` for one that cannot be
        projected."""
        ...

    async def write(self, conn: asyncpg.Connection, items: Sequence[Item]) -> int:
        """Write ``read``'s items in the caller's transaction; return the rows changed."""
        ...

    def replies(self, items: Sequence[Item]) -> Iterable[Notice]:
        """The reply keys (:mod:`proffer_stream.db.replies`) the items make readable, each
        with the outcome itself where a waiter can take it as it is."""
        ...


class EventsProjection:
    """``proffer.events`` -> ``events``: every event once, by tenant, customer and id.

    Records that do not validate, or break ``limits``, are skipped here, and so are the
    events of a tenant that does not exist (:func:`insert_events`); the signals agent
    dead-letters them.
    """

    table = "events"
    latest_per_key = False

    def __init__(self, topic: str, limits: RecordLimits) -> None:
        self.topic = topic
        self.limits = limits

    def read(self, records: Sequence[Record]) -> list[StagedEvent]:
        return staged_events(records, self.limits)

    async def write(self, conn: asyncpg.Connection, items: Sequence[StagedEvent]) -> int:
        return await insert_events(conn, items)

    def replies(self, items: Sequence[StagedEvent]) -> Iterable[str]:
        per_tenant = Counter(item[0] for item in items)  # a StagedEvent's tenant
        return (events_key(tenant_id, count) for tenant_id, count in per_tenant.items())


def staged_events(records: Sequence[Record], limits: RecordLimits) -> list[StagedEvent]:
    """The staging rows of the records' events; records that do not validate are skipped."""
    rows: list[StagedEvent] = []
    for record in records:
        read = _read(record, limits)
        if read is not None:
            tenant, external = read.customer_key
            internal = _customer_id(tenant, external)
            rows.extend([staged_event(tenant, internal, event) for event in read.events])
    return rows


_customer_id = functools.lru_cache(maxsize=1 << 16)(customer_id)
"""``customer_id`` of the customers seen lately: a lookup costs about a tenth of the hash."""


def _read(record: Record, limits: RecordLimits) -> EventRecord | None:
    try:
        return read_event_record(
            record.key,
            record.value,
            partition=record.partition,
            offset=record.offset,
            timestamp_ms=record.timestamp,
            limits=limits,
        )
    except BadRecord:
        return None


class Snapshot(NamedTuple):
    """A profile from the signals changelog: its columns, and its JSON as the worker
    wrote it."""

    columns: CustomerColumns
    json: str


class CustomersProjection:
    """The signals changelog -> ``customers``: the latest snapshot of each customer."""

    table = "customers"
    latest_per_key = True  # profiles, the last write wins

    def __init__(self, topic: str) -> None:
        self.topic = topic

    def read(self, records: Sequence[Record]) -> list[Snapshot]:
        return [snapshot for snapshot in map(_snapshot, records) if snapshot is not None]

    async def write(self, conn: asyncpg.Connection, items: Sequence[Snapshot]) -> int:
        latest = {(s.columns.tenant_id, s.columns.customer_id): s for s in items}.values()
        upserted = await upsert_customers(
            conn, [s.columns for s in latest], [s.json for s in latest]
        )
        if upserted < len(latest):
            log.error(
                "%d customer profile(s) not projected: their internal id is held by another"
                " external id of the tenant (a hash collision)",
                len(latest) - upserted,
            )
        return upserted

    def replies(self, items: Sequence[Snapshot]) -> Iterable[str]:
        return ()


def latest_of_each_key(records: Sequence[Record]) -> list[Record]:
    """The last record with a value of each key (a tenth fewer to parse in phase b1 of
    ``bench/ingest.py``; more when the sink is behind)."""
    latest = {record.key: record for record in records if record.value is not None}
    return list(latest.values())


def _snapshot(record: Record) -> Snapshot | None:
    if record.value is None:
        return None
    try:
        columns = CustomerColumns.model_validate_json(record.value)
    except ValidationError as exc:
        raise BadRecord("invalid_message", describe_errors(exc.errors())) from None
    return Snapshot(columns, record.value.decode())


class OffersProjection:
    """``proffer.offers`` -> ``offers``, ``offer_events`` and ``decisions``.

    Idempotent and version-ordered: each event and decision once, each offer at its
    highest version.
    """

    table = "offer_events"
    latest_per_key = False

    def __init__(self, topic: str) -> None:
        self.topic = topic

    def read(self, records: Sequence[Record]) -> list[OfferEvent]:
        return [read_message(OfferEvent, record.value) for record in records]

    async def write(self, conn: asyncpg.Connection, items: Sequence[OfferEvent]) -> int:
        return await apply_offer_events(conn, items)

    def replies(self, items: Sequence[OfferEvent]) -> Iterable[str]:
        for event in items:
            if event.trace is not None and event.request_id is not None:
                yield decision_key(event.request_id)
            if event.offer_id is not None:
                yield offer_key(event.offer_id)
            yield feed_key(
                event.tenant_id,
                event.event_type,
                event.offer_id,
                event.status,
                event.external_customer_id,
                event.cause,
            )


class CommandOutcomesProjection:
    """``proffer.offer-command-outcomes`` -> ``offer_commands``: what the gateway waits for."""

    table = "offer_commands"
    latest_per_key = False

    def __init__(self, topic: str) -> None:
        self.topic = topic

    def read(self, records: Sequence[Record]) -> list[CommandOutcome]:
        return [read_message(CommandOutcome, record.value) for record in records]

    async def write(self, conn: asyncpg.Connection, items: Sequence[CommandOutcome]) -> int:
        return await apply_command_outcomes(conn, items)

    def replies(self, items: Sequence[CommandOutcome]) -> Iterable[Notice]:
        return [(command_key(o.command_id), o.model_dump_json()) for o in items]


class TenantConfigProjection:
    """``proffer.tenant-config`` -> ``tenant_config`` (each tenant's latest rules and
    policy) and ``tenant_config_versions`` (every version of them)."""

    table = "tenant_config"
    latest_per_key = False

    def __init__(self, topic: str) -> None:
        self.topic = topic

    def read(self, records: Sequence[Record]) -> list[ConfigChange]:
        return [read_message(ConfigChange, r.value) for r in records if r.value is not None]

    async def write(self, conn: asyncpg.Connection, items: Sequence[ConfigChange]) -> int:
        return await apply_config_changes(conn, items)

    def replies(self, items: Sequence[ConfigChange]) -> Iterable[str]:
        return [config_version_key(change.tenant_id, change.kind) for change in items]


class ConfigOutcomesProjection:
    """``proffer.tenant-config-outcomes`` -> ``config_commands``: what the gateway waits for."""

    table = "config_commands"
    latest_per_key = False

    def __init__(self, topic: str) -> None:
        self.topic = topic

    def read(self, records: Sequence[Record]) -> list[ConfigOutcome]:
        return [read_message(ConfigOutcome, record.value) for record in records]

    async def write(self, conn: asyncpg.Connection, items: Sequence[ConfigOutcome]) -> int:
        return await apply_config_outcomes(conn, items)

    def replies(self, items: Sequence[ConfigOutcome]) -> Iterable[str]:
        return [command_key(outcome.command_id) for outcome in items]


class CatalogDefinitionsProjection:
    """``proffer.catalog`` -> ``catalog_offers``, ``catalog_collections``,
    ``catalog_integrations``: each definition at its highest version. Tombstones are
    skipped (an archived offer stays, archived)."""

    table = "catalog_offers"
    latest_per_key = False  # the write keeps the highest version, not the last record

    def __init__(self, topic: str) -> None:
        self.topic = topic

    def read(self, records: Sequence[Record]) -> list[Definition]:
        return [read_definition(r.key, r.value) for r in records if r.value is not None]

    async def write(self, conn: asyncpg.Connection, items: Sequence[Definition]) -> int:
        return await apply_catalog_definitions(conn, items)

    def replies(self, items: Sequence[Definition]) -> Iterable[str]:
        return [catalog_definition_key(d.tenant_id, target_of(d), d.id) for d in items]


_DEFINITIONS: dict[bytes, type[Definition]] = {
    b"catalog": CatalogDefinition,
    b"collection": CollectionDefinition,
    b"integration": IntegrationDefinition,
}
"""The definition each kind of key of ``proffer.catalog`` carries (see
:func:`~proffer_stream.catalog.models.definition_key`)."""


def read_definition(key: bytes | None, value: bytes | None) -> Definition:
    """A ``proffer.catalog`` record's definition: an offer's, a collection's or an
    integration's, as its key says; :class:`BadRecord` when the key names none or the
    value does not validate."""
    parts = (key or b"").split(b"\x00")
    model = _DEFINITIONS.get(parts[1]) if len(parts) == 3 else None
    if model is None:
        raise BadRecord("wrong_key", f"not a catalog definition's key: {key!r}")
    return read_message(model, value)


class CatalogEventsProjection:
    """``proffer.catalog-events`` -> ``catalog_activity``, ``catalog_counts``,
    ``catalog_members``: each decision once, the counts of each offer's newest event."""

    table = "catalog_activity"
    latest_per_key = False

    def __init__(self, topic: str) -> None:
        self.topic = topic

    def read(self, records: Sequence[Record]) -> list[CatalogEvent]:
        return [read_message(CatalogEvent, record.value) for record in records]

    async def write(self, conn: asyncpg.Connection, items: Sequence[CatalogEvent]) -> int:
        return await apply_catalog_events(conn, items)

    def replies(self, items: Sequence[CatalogEvent]) -> Iterable[Notice]:
        # The decision travels with its key: the waiting gateway reads no row for it.
        return [(command_key(event.event_id), event.model_dump_json()) for event in items]


class DecisionsProjection:
    """``proffer.decisions`` -> ``decisions_made``, ``decision_reactions``,
    ``decision_fulfillments``: each decision and reaction once, each fulfilment ended once."""

    table = "decisions_made"
    latest_per_key = False

    def __init__(self, topic: str) -> None:
        self.topic = topic

    def read(self, records: Sequence[Record]) -> list[DecisionMade | DecisionReaction]:
        return [read_message(DecisionRecord, record.value).root for record in records]

    async def write(
        self, conn: asyncpg.Connection, items: Sequence[DecisionMade | DecisionReaction]
    ) -> int:
        return await apply_decision_records(conn, items)

    def replies(self, items: Sequence[DecisionMade | DecisionReaction]) -> Iterable[str]:
        for item in items:
            if isinstance(item, DecisionMade):
                yield decision_made_key(item.decision_id)
            elif item.fulfillment_id is not None:
                yield fulfillment_key(item.fulfillment_id)
