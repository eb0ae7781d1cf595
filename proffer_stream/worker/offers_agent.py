"""The offers agent: decides each offer request once, and owns each customer's offers.

Requests and commands arrive on ``proffer.offer-requests`` keyed like the customer's
events, so the customer's profile (the ``signals`` table) is in this worker too. Each
decision, and each change a command makes (a transition from the API, engagement or a
redemption from the customer's events, an expiry from the timers), is one event on
``proffer.offers``; a command from the API also gets its outcome on
``proffer.offer-command-outcomes``. The customer's offers and the messages decided are
kept in the ``offers`` table, written once per batch with its changelog, as the signals
agent does. A record that cannot be read or decided goes to the dead-letter topic; the
rest of the batch goes on. A decision that cannot be published stops the worker unacked.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol

from faust.types import EventT, TableT

from proffer_stream.core import metrics
from proffer_stream.core.errors import BadRecord
from proffer_stream.core.identity import partition_key
from proffer_stream.core.types import CustomerKey
from proffer_stream.ingest.records import read_message, require_customer_key
from proffer_stream.kafka.deadletter import SourceRecord
from proffer_stream.offers.commands import apply_command, auto_approval
from proffer_stream.offers.config import TenantConfigs
from proffer_stream.offers.decide import CustomerOffers, already_decided, conclude, suppression
from proffer_stream.offers.models import (
    CommandOutcome,
    OfferCommand,
    OfferDraft,
    OfferEvent,
    OfferRequest,
    OfferRequestsRecord,
    WriterTrace,
)
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

    def all(self) -> list[CustomerOffers]:
        """Every customer's offers this worker holds (after a rebalance, for the timers)."""
        return [CustomerOffers.model_validate_json(v) for v in self.table.values() if v]

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
        outbox: Outbox,
        *,
        configs: TenantConfigs,
        concurrency: int,
        on_saved: Callable[[Sequence[CustomerOffers]], None] = lambda states: None,
    ) -> None:
        self.offers = offers
        self.profiles = profiles
        self.writer = writer
        self.dead_letters = dead_letters
        self.outbox = outbox
        self.configs = configs
        self.writing = asyncio.Semaphore(concurrency)
        self.on_saved = on_saved

    async def process(self, batch: Sequence[EventT[bytes]]) -> None:
        """Decide each request and command of the batch once; bad records are
        dead-lettered."""
        by_customer: dict[CustomerKey, list[tuple[SourceRecord, OfferMessage]]] = {}
        for event in batch:
            source = source_record(event)
            try:
                message = read_offer_message(source)
            except BadRecord as error:
                await self.dead_letters.send(source, error)
                continue
            key = (message.tenant_id, message.external_customer_id)
            by_customer.setdefault(key, []).append((source, message))
        decided = await asyncio.gather(
            *(self._decide_customer(key, messages) for key, messages in by_customer.items())
        )
        states = [state for state in decided if state is not None]
        await self.offers.save(states)
        self.on_saved(states)

    async def _decide_customer(
        self, key: CustomerKey, messages: list[tuple[SourceRecord, OfferMessage]]
    ) -> CustomerOffers | None:
        """Decide one customer's messages in order; their state, if any was decided."""
        state = self.offers.load(key)
        changed = False
        for source, message in messages:
            if already_decided(state, _message_id(message), source.offset):
                continue
            try:
                events, outcome = await self._handle(state, message, source.offset)
            except Exception as exc:  # this record only; its state was not changed
                await self.dead_letters.send(source, BadRecord("processing_error", repr(exc)))
                continue
            for event in events:
                await self.outbox.event(event)
                metrics.OFFER_CHANGES.labels(event.event_type).inc()
            if outcome is not None:
                await self.outbox.outcome(outcome)
            changed = True
        return state if changed else None

    async def _handle(
        self, state: CustomerOffers, message: OfferMessage, offset: int
    ) -> tuple[list[OfferEvent], CommandOutcome | None]:
        policy = self.configs.policy(message.tenant_id)
        if isinstance(message, OfferCommand):
            applied = apply_command(state, message, offset, policy)
            return applied.events, applied.outcome
        decision = await self._decide(state, message, offset)
        approval = auto_approval(state, decision, policy)
        return [decision] if approval is None else [decision, approval], None

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


OfferMessage = OfferRequest | OfferCommand


class Outbox(Protocol):
    """Where the agent's output goes, keyed like the customer's events."""

    async def event(self, event: OfferEvent) -> None:
        """An offer's change or a decision, to ``proffer.offers``."""

    async def outcome(self, outcome: CommandOutcome) -> None:
        """A command's outcome, to ``proffer.offer-command-outcomes``."""


def read_offer_message(source: SourceRecord) -> OfferMessage:
    """Validate one ``proffer.offer-requests`` record, or raise :class:`BadRecord`."""
    message = read_message(OfferRequestsRecord, source.value).root
    require_customer_key(
        source.key, message.tenant_id, message.external_customer_id, "external_customer_id"
    )
    return message


def _message_id(message: OfferMessage) -> str:
    return message.request_id if isinstance(message, OfferRequest) else message.command_id
