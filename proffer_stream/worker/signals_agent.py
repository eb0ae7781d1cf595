"""The signals agent: folds ``proffer.events`` records into each customer's profile.

Exactness under at-least-once delivery: a customer's records all live in one
partition, so each profile remembers the offset of the last record it applied and
skips anything at or below it on a replay; the ids it counted in the last days (the
``event-ids`` table) catch client re-sends.
Each record stands on its own: one that cannot be read or applied goes to the
dead-letter topic with its reason and position, and the rest of the batch is applied.
A record is held to what the gateway takes over HTTP: its size, its number of events,
and a tenant that exists.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from aiokafka.errors import KafkaError
from faust.types import Message

from proffer_stream.core.errors import BadRecord
from proffer_stream.core.types import CustomerKey
from proffer_stream.ingest.models import NormalizedEvent
from proffer_stream.ingest.records import EventRecord, RecordLimits, read_event_record
from proffer_stream.kafka.deadletter import SourceRecord
from proffer_stream.signals.fold import apply_record
from proffer_stream.signals.models import CustomerSignals
from proffer_stream.signals.seen_ids import SeenIds
from proffer_stream.worker.deadletters import DeadLetters, source_record
from proffer_stream.worker.offer_trigger import OfferTrigger
from proffer_stream.worker.profiles import Loaded, ProfileStore
from proffer_stream.worker.progress import Progress
from proffer_stream.worker.reroute import Rerouter
from proffer_stream.worker.seen_ids import SeenIdStore
from proffer_stream.worker.tenants import KnownTenants

STAGE = "signals-agent"
log = logging.getLogger(__name__)


class SignalsAgent:
    """Applies batches of ``proffer.events`` records to the profiles they concern."""

    def __init__(
        self,
        profiles: ProfileStore,
        dead_letters: DeadLetters,
        rerouter: Rerouter,
        seen_ids: SeenIdStore,
        tenants: KnownTenants,
        limits: RecordLimits,
        trigger: OfferTrigger | None = None,
    ) -> None:
        self.profiles = profiles
        self.tenants = tenants
        self.limits = limits
        self.dead_letters = dead_letters
        self.rerouter = rerouter
        self.seen_ids = seen_ids
        self.trigger = trigger
        self.progress = Progress()

    async def process(self, batch: Sequence[Message]) -> None:
        """Apply a batch; what cannot be applied is dead-lettered, never stops the rest."""
        readable = []
        origin: dict[CustomerKey, Message] = {}
        in_hand: dict[CustomerKey, datetime] = {}
        for message, source, record in await self._read_all(batch):
            if self.rerouter.misplaced(source):
                await self.rerouter.move(source, record)
                continue
            readable.append((source, record))
            origin[record.customer_key] = message
            if record.events:
                first = min(event.received_at for event in record.events)
                key = record.customer_key
                in_hand[key] = min(in_hand.get(key, first), first)
        loaded = await self.profiles.load(origin.keys(), in_hand)
        states, failed = loaded.states, loaded.failed
        now = datetime.now(UTC)
        seen = {key: self._seen_ids(key, now, origin[key], loaded) for key in states}
        applied: dict[CustomerKey, list[EventRecord]] = {}
        counted: dict[CustomerKey, list[NormalizedEvent]] = {}
        for source, record in readable:
            key = record.customer_key
            if key in failed:
                await self._reject(source, BadRecord("processing_error", _why(failed[key])))
                continue
            replay = record.offset <= states[key].source_offset
            try:
                events = self._apply(states[key], record, now, seen[key])
            except Exception as exc:  # this record only; the batch goes on
                states[key], seen[key], counted[key] = await self._replay(
                    key, applied.get(key, []), now, origin[key]
                )
                await self._reject(source, BadRecord("processing_error", _why(exc)))
                continue
            if not replay:
                applied.setdefault(key, []).append(record)
                counted.setdefault(key, []).extend(events)
        for key in applied:
            if self.trigger is not None:
                await self._trigger(
                    self.trigger, states[key], counted.get(key, []), now, origin[key]
                )
            states[key].id_chunks = seen[key].chunks_by_day()
        for key, ids in seen.items():  # replays too: they may remember lost ids again
            if key in applied or ids.changed():
                self.seen_ids.save(key, ids, origin[key])
        self.profiles.save(states[key] for key in applied)

    async def _trigger(
        self,
        trigger: OfferTrigger,
        state: CustomerSignals,
        counted: list[NormalizedEvent],
        now: datetime,
        origin: Message,
    ) -> None:
        """What the update asks of the offers agent. A failure to work it out (a bug, or
        data no check caught) dead-letters the customer's last record with its cause,
        rather than stopping the worker on a record it would read again: the events stay
        counted, and what was not sent to the offers agent is lost. Kafka's errors go on
        up (the batch is not committed, and is read again)."""
        try:
            await trigger.after_update(state, counted, now)
        except KafkaError:
            raise
        except Exception as exc:
            log.exception("offer trigger failed for %s:%s", state.tenant_id, state.external_id)
            await self._reject(source_record(origin), BadRecord("processing_error", _why(exc)))

    def report(self) -> None:
        self.progress.report()

    def _apply(
        self, state: CustomerSignals, record: EventRecord, now: datetime, seen: SeenIds
    ) -> list[NormalizedEvent]:
        counted = _fold(state, record, now, seen)
        self.progress.record_applied(len(record.events), len(counted))
        return counted

    async def _replay(
        self,
        key: CustomerKey,
        records: list[EventRecord],
        now: datetime,
        origin: Message,
    ) -> tuple[CustomerSignals, SeenIds, list[NormalizedEvent]]:
        """The customer's profile and ids before a failed record: as loaded, plus the good
        records; and the events those counted.

        ``apply_record`` works in place, so a record that raised may have left half its
        effect; what they were loaded from (written once per batch) is untouched.
        """
        loaded = await self.profiles.load([key])
        state, seen = loaded.states[key], self._seen_ids(key, now, origin, loaded)
        counted = [event for record in records for event in _fold(state, record, now, seen)]
        return state, seen, counted

    def _seen_ids(
        self, key: CustomerKey, now: datetime, origin: Message, loaded: Loaded
    ) -> SeenIds:
        state = loaded.states.get(key)
        seen = self.seen_ids.load(key, now, origin, state.id_chunks if state else None)
        seen.add_counted(loaded.counted_ids.get(key, ()))
        return seen

    async def _read_all(
        self, batch: Sequence[Message]
    ) -> list[tuple[Message, SourceRecord, EventRecord]]:
        """The batch's records that can be read and are of a tenant that exists; the
        others dead-lettered."""
        read = []
        for message in batch:
            source = source_record(message)
            record = await self._read(source)
            if record is not None:
                read.append((message, source, record))
        unknown = await self.tenants.unknown({record.batch.tenant_id for _, _, record in read})
        for _, source, record in read:
            if record.batch.tenant_id in unknown:
                error = f"tenant_id: no tenant {record.batch.tenant_id!r} (no API key names it)"
                await self._reject(source, BadRecord("unknown_tenant", error))
        return [entry for entry in read if entry[2].batch.tenant_id not in unknown]

    async def _read(self, source: SourceRecord) -> EventRecord | None:
        try:
            return read_event_record(
                source.key,
                source.value,
                partition=source.partition,
                offset=source.offset,
                timestamp_ms=source.timestamp_ms or 0,
                limits=self.limits,
            )
        except BadRecord as error:
            await self._reject(source, error)
            return None

    async def _reject(self, source: SourceRecord, error: BadRecord) -> None:
        await self.dead_letters.send(source, error)
        self.progress.dead_lettered()


def _fold(
    state: CustomerSignals, record: EventRecord, now: datetime, seen: SeenIds
) -> list[NormalizedEvent]:
    return apply_record(
        state, record.batch.customer, record.events, offset=record.offset, now=now, seen=seen
    )


def _why(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:1000]
