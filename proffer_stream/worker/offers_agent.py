"""The offers agent: decides each offer request once, and owns each customer's offers.

Requests arrive on ``proffer.offer-requests`` keyed like the customer's events, so the
customer's profile (the ``signals`` table) is in this worker too. Each decision is one
event on ``proffer.offers``; the customer's offers and the requests decided are kept in
the ``offers`` table, written once per batch with its changelog, as the signals agent
does. A record that cannot be read or decided goes to the dead-letter topic; the rest
of the batch goes on. A decision that cannot be published stops the worker unacked.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol

from faust.types import EventT, TableT

from proffer_stream.core import metrics
from proffer_stream.core.errors import BadRecord
from proffer_stream.core.identity import partition_key
from proffer_stream.core.types import CustomerKey
from proffer_stream.ingest.records import read_message, require_customer_key
from proffer_stream.kafka.deadletter import SourceRecord
from proffer_stream.offers.config import TenantConfigs
from proffer_stream.offers.decide import CustomerOffers, already_decided, conclude, suppression
from proffer_stream.offers.models import OfferDraft, OfferEvent, OfferRequest, WriterTrace
from proffer_stream.offers.policy import Policy
from proffer_stream.offers.rules import TriggerRule
from proffer_stream.offers.writer import write_builtin
from proffer_stream.signals.models import CustomerSignals
from proffer_stream.worker.deadletters import DeadLetters, source_record
from proffer_stream.worker.profiles import ProfileStore
from proffer_stream.worker.tables import write_through

log = logging.getLogger(__name__)

STAGE = "offers-agent"


class Writer(Protocol):
    """Turns a profile, the rule that fired and the policy into a draft, with its trace."""

    async def write(
        self,
        signals: CustomerSignals,
        rule: TriggerRule | None,
        policy: Policy,
        now: datetime,
    ) -> tuple[OfferDraft, WriterTrace]: ...


class BuiltinWriter:
    """The deterministic writer: same input, same draft; no model needed."""

    async def write(
        self,
        signals: CustomerSignals,
        rule: TriggerRule | None,
        policy: Policy,
        now: datetime,
    ) -> tuple[OfferDraft, WriterTrace]:
        started = time.perf_counter()
        draft = write_builtin(signals, rule, policy, now)
        latency = (time.perf_counter() - started) * 1000
        return draft, WriterTrace(kind="built-in", latency_ms=round(latency, 3))


class OffersStore:
    """Each customer's :class:`CustomerOffers` in the Faust table ``offers``."""

    def __init__(self, table: TableT[bytes, bytes]) -> None:
        self.table = table

    def load(self, key: CustomerKey) -> CustomerOffers:
        stored = self.table.get(partition_key(*key))
        if stored is None:
            return CustomerOffers(tenant_id=key[0], external_customer_id=key[1])
        return CustomerOffers.model_validate_json(stored)

    async def save(self, states: Sequence[CustomerOffers]) -> None:
        """Table and changelog, once per batch."""
        await write_through(
            self.table,
            (
                (
                    partition_key(state.tenant_id, state.external_customer_id),
                    state.model_dump_json().encode(),
                )
                for state in states
            ),
        )


class OffersAgent:
    """Decides batches of offer requests: customers side by side, each one's in order.

    A writer may be a model that takes seconds, so the requests of different customers
    are written concurrently (at most ``concurrency`` writes in flight), while each
    customer's requests are decided one after the other, in offset order, so that a
    cooldown or a re-sent request sees the decision before it. The batch is acked only
    when every decision in it is published and saved.
    """

    def __init__(
        self,
        offers: OffersStore,
        profiles: ProfileStore,
        writer: Writer,
        dead_letters: DeadLetters,
        publish: OfferEventSink,
        *,
        configs: TenantConfigs,
        concurrency: int,
    ) -> None:
        self.offers = offers
        self.profiles = profiles
        self.writer = writer
        self.dead_letters = dead_letters
        self.publish = publish
        self.configs = configs
        self.writing = asyncio.Semaphore(concurrency)

    async def process(self, batch: Sequence[EventT[bytes]]) -> None:
        """Decide each request of the batch once; bad records are dead-lettered."""
        by_customer: dict[CustomerKey, list[tuple[SourceRecord, OfferRequest]]] = {}
        for event in batch:
            source = source_record(event)
            try:
                request = read_offer_request(source)
            except BadRecord as error:
                await self.dead_letters.send(source, error)
                continue
            key = (request.tenant_id, request.external_customer_id)
            by_customer.setdefault(key, []).append((source, request))
        decided = await asyncio.gather(
            *(self._decide_customer(key, requests) for key, requests in by_customer.items())
        )
        await self.offers.save([state for state in decided if state is not None])

    async def _decide_customer(
        self, key: CustomerKey, requests: list[tuple[SourceRecord, OfferRequest]]
    ) -> CustomerOffers | None:
        """Decide one customer's requests in order; their state, if any was decided."""
        state = self.offers.load(key)
        changed = False
        for source, request in requests:
            if already_decided(state, request, source.offset):
                continue
            try:
                decision = await self._decide(state, request, source.offset)
            except Exception as exc:  # this record only; its state was not changed
                await self.dead_letters.send(source, BadRecord("processing_error", repr(exc)))
                continue
            await self.publish(decision)
            changed = True
        return state if changed else None

    async def _decide(
        self, state: CustomerOffers, request: OfferRequest, offset: int
    ) -> OfferEvent:
        now = datetime.now(UTC)
        tenant = request.tenant_id
        signals = request.signals or self.profiles.get((tenant, request.external_customer_id))
        rule = self.configs.rule(tenant, request.rule_id) if request.rule_id else None
        policy = self.configs.policy(tenant)
        suppressed = suppression(state, request, signals, rule, policy, now)
        written = None
        if signals is not None and not suppressed:
            async with self.writing:
                written = await self.writer.write(signals, rule, policy, now)
        decision = conclude(
            state,
            request,
            offset,
            signals=signals,
            rule=rule,
            policy=policy,
            now=now,
            suppressed=suppressed,
            written=written,
        )
        metrics.OFFER_DECISIONS.labels(decision.event_type).inc()
        return decision


class OfferEventSink(Protocol):
    """Where decisions go: ``proffer.offers``, keyed like the customer's events."""

    async def __call__(self, event: OfferEvent) -> None: ...


def read_offer_request(source: SourceRecord) -> OfferRequest:
    """Validate one ``proffer.offer-requests`` record, or raise :class:`BadRecord`."""
    request = read_message(OfferRequest, source.value)
    require_customer_key(
        source.key, request.tenant_id, request.external_customer_id, "external_customer_id"
    )
    return request
