"""The offers agent: decides each offer request once, and owns each customer's offers.

Requests arrive on ``proffer.offer-requests`` keyed like the customer's events, so the
customer's profile (the ``signals`` table) is in this worker too. Each decision is one
event on ``proffer.offers``; the customer's offers and the requests decided are kept in
the ``offers`` table, written once per batch with its changelog, as the signals agent
does. A record that cannot be read or decided goes to the dead-letter topic; the rest
of the batch goes on.
"""

from __future__ import annotations

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
from proffer_stream.offers.decide import CustomerOffers, already_decided, conclude, suppression
from proffer_stream.offers.models import OfferDraft, OfferEvent, OfferRequest, WriterTrace
from proffer_stream.offers.policy import Policy
from proffer_stream.offers.rules import RuleSet, TriggerRule
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
    """Decides batches of offer requests."""

    def __init__(
        self,
        offers: OffersStore,
        profiles: ProfileStore,
        writer: Writer,
        dead_letters: DeadLetters,
        publish: OfferEventSink,
        *,
        rules: RuleSet,
        policy: Policy,
    ) -> None:
        self.offers = offers
        self.profiles = profiles
        self.writer = writer
        self.dead_letters = dead_letters
        self.publish = publish
        self.rules = {rule.id: rule for rule in rules.rules}
        self.policy = policy

    async def process(self, batch: Sequence[EventT[bytes]]) -> None:
        """Decide each request of the batch once; bad records are dead-lettered."""
        states: dict[CustomerKey, CustomerOffers] = {}
        changed: set[CustomerKey] = set()
        for event in batch:
            source = source_record(event)
            try:
                request = read_offer_request(source)
                key = (request.tenant_id, request.external_customer_id)
                state = states.get(key) or self.offers.load(key)
                states[key] = state
                if already_decided(state, request, source.offset):
                    continue
                await self.publish(await self._decide(state, request, source.offset))
                changed.add(key)
            except BadRecord as error:
                await self.dead_letters.send(source, error)
            except Exception as exc:  # this record only; its state was not changed
                await self.dead_letters.send(source, BadRecord("processing_error", repr(exc)))
        await self.offers.save([states[key] for key in changed])

    async def _decide(
        self, state: CustomerOffers, request: OfferRequest, offset: int
    ) -> OfferEvent:
        now = datetime.now(UTC)
        signals = request.signals or self.profiles.get(
            (request.tenant_id, request.external_customer_id)
        )
        rule = self.rules.get(request.rule_id) if request.rule_id else None
        suppressed = suppression(state, request, signals, self.policy, now)
        written = None
        if signals is not None and not suppressed:
            written = await self.writer.write(signals, rule, self.policy, now)
        decision = conclude(
            state,
            request,
            offset,
            signals=signals,
            rule=rule,
            policy=self.policy,
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
