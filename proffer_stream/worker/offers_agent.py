"""The offers agent: decides each offer request once, and owns each customer's offers.

Requests and commands arrive on ``proffer.offer-requests`` keyed like the customer's
events, so the customer's profile (the ``signals`` table) is in this worker too. Each
decision, and each change a command makes (a transition from the API, engagement or a
redemption from the customer's events, an expiry from the timers), is one event on
``proffer.offers``; a command from the API also gets its outcome on
``proffer.offer-command-outcomes``. The customer's offers and the messages decided are
kept in the ``offers`` table, written with its changelog once the customer's messages of a
batch are decided. A record that cannot be read or decided goes to the dead-letter topic;
the rest goes on. A decision that cannot be published stops the worker unacked.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import UTC, datetime
from typing import NamedTuple, Protocol

import asyncpg
from aiokafka.errors import KafkaError
from faust.types import EventT

from proffer_stream.catalog.generated import catalog_follow_up, grant_command
from proffer_stream.catalog.models import MemberCommand
from proffer_stream.core import metrics
from proffer_stream.core.errors import BadRecord
from proffer_stream.core.identity import partition_key
from proffer_stream.core.retry import retry_transient
from proffer_stream.core.types import CustomerKey
from proffer_stream.db.offers import OpenOffer, any_offers, load_customer_offers, open_offers
from proffer_stream.db.pool import TRANSIENT_ERRORS, connect_pool
from proffer_stream.ingest.records import read_message, require_customer_key
from proffer_stream.kafka.deadletter import SourceRecord
from proffer_stream.offers.commands import apply_command, auto_approval
from proffer_stream.offers.config import TenantConfigs
from proffer_stream.offers.decide import (
    CustomerOffers,
    already_decided,
    conclude,
    hold_for_grant,
    suppression,
)
from proffer_stream.offers.lifecycle import may_move_to
from proffer_stream.offers.models import (
    CommandOutcome,
    OfferCommand,
    OfferEvent,
    OfferRequest,
    OfferRequestsRecord,
)
from proffer_stream.offers.writer import Writer
from proffer_stream.signals.models import CustomerProfile
from proffer_stream.worker.catalog_link import CatalogLink
from proffer_stream.worker.deadletters import DeadLetters, source_record
from proffer_stream.worker.profiles import ProfileStore
from proffer_stream.worker.reroute import key_partition
from proffer_stream.worker.restore import BatchedRestore
from proffer_stream.worker.state import TableTransaction

log = logging.getLogger(__name__)

STAGE = "offers-agent"

EVENTS_WAIT_SECONDS = 5.0
"""The longest a request waits for the signals agent to apply the customer's events the
gateway accepted before it (``OfferRequest.after_event_offset``); then it is decided on
the profile there is."""


RESTORING = b"\x00restoring"
"""The key that marks a partition of the ``offers`` table as restoring (no customer key
starts with a NUL)."""


class OffersStore:
    """Each customer's :class:`CustomerOffers` in the Faust table ``offers``, written
    through the table's transaction (the checkpoint writes it before each commit).

    The table misses a customer PostgreSQL knows when the broker lost its changelog
    (the local broker keeps nothing across restarts); without it every offer made before
    would be unknown to lifecycle commands, redemptions and expiries, and the cooldown
    forgotten. A partition whose changelog began empty while PostgreSQL had offers is
    *restoring* (:meth:`find_restoring`, which marks it in the table, so the mark
    survives restarts): a customer it lacks is restored from PostgreSQL (:meth:`restore`),
    as :class:`~proffer_stream.worker.profiles.ProfileStore` restores profiles. Elsewhere
    the table is the whole truth, and a new customer costs no query.
    """

    def __init__(
        self, state: TableTransaction[bytes], partitions: int, database_url: str = ""
    ) -> None:
        self.state = state
        self.partitions = partitions
        self.database_url = database_url
        self.restoring_known = asyncio.Event()
        self._restoring: set[int] = set()
        self._pool: asyncpg.Pool | None = None
        self._connecting = asyncio.Lock()
        self._in_postgres = BatchedRestore(self._query, "customers' offers")

    def all(self) -> list[CustomerOffers]:
        """Every customer's offers this worker holds (after a rebalance, for the timers)."""
        table = self.state.table
        return [
            CustomerOffers.model_validate_json(value)
            for key, value in table.items()
            if value and key != RESTORING
        ]

    def restoring(self, key: CustomerKey) -> bool:
        """Whether the customer's partition may lack what PostgreSQL has of them."""
        return key_partition(partition_key(*key), self.partitions) in self._restoring

    async def find_restoring(
        self,
        partitions: Collection[int],
        changelog_ends: Callable[[list[int]], Awaitable[dict[int, int]]],
    ) -> set[int]:
        """Find which of the assigned ``partitions`` are restoring: marked so, or with an
        empty changelog while PostgreSQL has offers (then marked). Sets
        :attr:`restoring_known`, which the agent waits for."""
        marked = {
            p
            for p in partitions
            if (self.state.held(p, RESTORING) or self.state.stored(p, RESTORING)) is not None
        }
        unmarked = [p for p in partitions if p not in marked]
        ends = await retry_transient(
            lambda: changelog_ends(unmarked), transient=(KafkaError, OSError), what="Kafka"
        )
        empty = [p for p, end in ends.items() if end == 0]
        if empty and self.database_url and await self._postgres_has_offers():
            for partition in empty:
                self.state.set(partition, RESTORING, b"1")
            log.warning(
                "offers table partitions %s start empty while PostgreSQL has offers: the"
                " broker lost their log; customers they lack are restored from PostgreSQL",
                sorted(empty),
            )
            marked.update(empty)
        self._restoring = marked
        self.restoring_known.set()
        return marked

    def forget_restoring(self) -> None:
        """Partitions move: what is restoring is found again once they are assigned."""
        self._restoring = set()
        self.restoring_known.clear()

    def get(self, key: CustomerKey) -> CustomerOffers | None:
        """The customer's offers in the table (with the writes held), if it has them."""
        stored = self._stored(partition_key(*key))
        return None if stored is None else CustomerOffers.model_validate_json(stored)

    def may_expire(self, key: CustomerKey, offer_id: int) -> bool:
        """Whether the customer's offer may still expire, as the table says (yes for a
        customer it does not hold: restored from PostgreSQL when a command reaches them)."""
        state = self.get(key)
        if state is None:
            return True
        offer = state.offers.get(offer_id)
        return offer is not None and "expired" in may_move_to(offer)

    def holds(self, key: CustomerKey) -> bool:
        """Whether the table has the customer's offers."""
        return self._stored(partition_key(*key)) is not None

    async def restore(self, key: CustomerKey) -> CustomerOffers:
        """The customer's offers as PostgreSQL has them, else none (for a customer the
        table does not have; it is saved with the customer's next change). An outage is
        waited out; an error that is not one is raised, for this customer only."""
        restored = None
        if self.database_url:
            restored = await self._in_postgres.get(key)
        return restored or CustomerOffers(tenant_id=key[0], external_customer_id=key[1])

    async def open_offers(self, partitions: Collection[int]) -> list[OpenOffer]:
        """The open offers PostgreSQL has of the customers of ``partitions`` that the
        table does not have: their expiry timers, when the broker lost the table's log.
        An outage is waited out."""
        partitions = [p for p in partitions if p in self._restoring]
        if not self.database_url or not partitions:
            return []

        async def query() -> list[OpenOffer]:
            return await open_offers(await self._connected())

        found = await retry_transient(query, transient=TRANSIENT_ERRORS, what="PostgreSQL")
        missing = []
        for n, offer in enumerate(found):
            if n % 10_000 == 9_999:
                await asyncio.sleep(0)  # a long list leaves the agents their turns
            key = partition_key(offer.tenant_id, offer.external_customer_id)
            if key_partition(key, self.partitions) in partitions and self._stored(key) is None:
                missing.append(offer)
        return missing

    def save(self, states: Sequence[CustomerOffers]) -> None:
        """Hold the customers' offers for the checkpoint."""
        for state in states:
            key = partition_key(state.tenant_id, state.external_customer_id)
            value = state.model_dump_json().encode()
            self.state.set(key_partition(key, self.partitions), key, value)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()

    def _stored(self, key: bytes) -> bytes | None:
        partition = key_partition(key, self.partitions)
        held = self.state.held(partition, key)
        return held if held is not None else self.state.stored(partition, key)

    async def _query(self, keys: list[CustomerKey]) -> dict[CustomerKey, CustomerOffers]:
        async def query() -> dict[CustomerKey, CustomerOffers]:
            return await load_customer_offers(await self._connected(), keys)

        return await retry_transient(query, transient=TRANSIENT_ERRORS, what="PostgreSQL")

    async def _postgres_has_offers(self) -> bool:
        async def query() -> bool:
            return await any_offers(await self._connected())

        return await retry_transient(query, transient=TRANSIENT_ERRORS, what="PostgreSQL")

    async def _connected(self) -> asyncpg.Pool:
        async with self._connecting:
            if self._pool is None:
                self._pool = await connect_pool(self.database_url, max_size=2)
            return self._pool


class OffersAgent:
    """Decides offer requests and applies commands: customers side by side, each one's
    in order, batches overlapping.

    A writer may be a model that takes seconds, so :meth:`process` only hands a batch's
    messages over and returns as soon as fewer than ``max_in_flight`` are undecided: the
    next batch is read while the model writes, instead of waiting for the slowest write of
    the batch before it. At most ``concurrency`` writes are in flight. Each customer's
    messages are decided one after the other, in offset order (after the customer's
    messages of earlier batches), so that a cooldown or a re-sent request sees the
    decision before it. A record is acked only when its decision is published and its
    customer's state saved; Faust commits up to the first record that is not, so after a
    crash the rest is read again and the state's memory of decided ids skips what was
    done. What escapes a customer's decisions goes to ``on_failure``, which must stop the
    worker without acking.
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
        catalog: CatalogLink,
        concurrency: int,
        max_in_flight: int,
        on_failure: Callable[[BaseException], None],
        on_saved: Callable[[Sequence[CustomerOffers]], None] = lambda states: None,
    ) -> None:
        self.offers = offers
        self.profiles = profiles
        self.writer = writer
        self.dead_letters = dead_letters
        self.outbox = outbox
        self.configs = configs
        self.catalog = catalog
        self.writing = asyncio.Semaphore(concurrency)
        self.max_in_flight = max_in_flight
        self.on_failure = on_failure
        self.on_saved = on_saved
        self.in_flight = 0
        self._room = asyncio.Event()
        self._last_of: dict[CustomerKey, asyncio.Task[None]] = {}

    async def process(self, batch: Sequence[EventT[bytes]]) -> None:
        """Start deciding the batch's messages; return once fewer than ``max_in_flight``
        are undecided. Bad records are dead-lettered and acked with the batch."""
        by_customer: dict[CustomerKey, list[Pending]] = {}
        for event in batch:
            source = source_record(event.message)
            try:
                message = read_offer_message(source)
            except BadRecord as error:
                await self.dead_letters.send(source, error)
                continue
            event.message.incref()  # the batch's ack leaves it unacked until it is decided
            key = (message.tenant_id, message.external_customer_id)
            by_customer.setdefault(key, []).append(Pending(event, source, message))
        for key, pending in by_customer.items():
            self._start(key, pending)
        while self.in_flight >= self.max_in_flight:
            self._room.clear()
            await self._room.wait()

    def _start(self, key: CustomerKey, pending: list[Pending]) -> None:
        """Decide ``pending`` after the customer's messages already in flight."""
        before = self._last_of.get(key)
        task = asyncio.create_task(self._decide_customer(key, pending, before))
        self._last_of[key] = task
        self.in_flight += len(pending)
        task.add_done_callback(functools.partial(self._finished, key, len(pending)))

    def _finished(self, key: CustomerKey, count: int, task: asyncio.Task[None]) -> None:
        if self._last_of.get(key) is task:
            del self._last_of[key]
        self.in_flight -= count
        self._room.set()
        if not task.cancelled() and (error := task.exception()) is not None:
            self.on_failure(error)

    async def _decide_customer(
        self, key: CustomerKey, pending: list[Pending], before: asyncio.Task[None] | None
    ) -> None:
        """Decide one customer's messages in order, save their state, ack the records."""
        if before is not None:
            await asyncio.wait([before])  # its decisions are saved (or the worker is stopping)
        state = self.offers.get(key)
        if state is None and not self.offers.restoring(key):
            state = CustomerOffers(tenant_id=key[0], external_customer_id=key[1])
        if state is None:
            try:
                state = await self.offers.restore(key)
            except Exception as exc:  # this customer's records only; the others go on
                for item in pending:
                    await self.dead_letters.send(item.source, _processing_error(exc))
                    item.event.ack()
                return
        changed = False
        for item in pending:
            if already_decided(state, _message_id(item.message), item.source.offset):
                continue
            try:
                events, outcome = await self._handle(state, item.message, item.source.offset)
            except Exception as exc:  # this record only; its state was not changed
                await self.dead_letters.send(item.source, _processing_error(exc))
                continue
            for event in events:
                await self.outbox.event(event)
                metrics.OFFER_CHANGES.labels(event.event_type).inc()
            if outcome is not None:
                await self.outbox.outcome(outcome)
            changed = True
        if changed:
            self.offers.save([state])
            self.on_saved([state])
        for item in pending:
            item.event.ack()

    async def _handle(
        self, state: CustomerOffers, message: OfferMessage, offset: int
    ) -> tuple[list[OfferEvent], CommandOutcome | None]:
        policy = self.configs.policy(message.tenant_id)
        if isinstance(message, OfferCommand):
            applied = apply_command(state, message, offset, policy)
            await self._follow_up_catalog_offers(applied.events)
            return applied.events, applied.outcome
        decision = await self._decide(state, message, offset)
        held = hold_for_grant(state, decision)
        if held is not None:  # issued once the catalog offer's owner grants it
            await self.outbox.catalog(grant_command(held))
            return [], None
        approval = auto_approval(state, decision, policy)
        return [decision] if approval is None else [decision, approval], None

    async def _decide(
        self, state: CustomerOffers, request: OfferRequest, offset: int
    ) -> OfferEvent:
        tenant = request.tenant_id
        key = (tenant, request.external_customer_id)
        if request.signals is None and request.after_event_offset is not None:
            await self._after_events(key, request.after_event_offset)
        now = datetime.now(UTC)
        signals = request.signals or await self._profile(key)
        rule = self.configs.rule(tenant, request.rule_id) if request.rule_id else None
        policy = self.configs.policy(tenant)
        suppressed = suppression(state, request, signals, rule, policy, now)
        brief = None
        if signals is not None and not suppressed and rule is not None and rule.hints.names_catalog:
            choice = self.catalog.choose(tenant, rule.hints, signals, now)
            brief, suppressed = choice.brief, choice.suppression()
        written = None
        if signals is not None and not suppressed:
            async with self.writing:
                written = await self.writer.write(signals, rule, policy, now, brief)
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
            brief=brief,
        )
        metrics.OFFER_DECISIONS.labels(decision.event_type).inc()
        return decision

    async def _follow_up_catalog_offers(self, events: Sequence[OfferEvent]) -> None:
        """A redemption of an offer written for a catalog offer is a use of it; its
        expiry gives back the catalog stock its grant held."""
        for event in events:
            if event.offer is None or event.offer.catalog_offer_id is None:
                continue
            key = (event.tenant_id, event.external_customer_id)
            profile = await self._profile(key)
            follow_up = catalog_follow_up(event, self.catalog.timezone(profile))
            if follow_up is not None:
                await self.outbox.catalog(follow_up)

    async def _after_events(self, key: CustomerKey, offset: int) -> None:
        """Wait for the signals agent to apply the customer's record at ``offset``.

        Events and requests are on two topics, read by two agents: a request made right
        after its customer's events were accepted can reach this agent first (the signals
        agent restores a new customer's profile from PostgreSQL first, and both wait for
        a worker's recovery), and was decided "unknown customer" in the quick start. The
        customer's other requests wait behind it (they are decided in order); other
        customers do not.
        """
        if not await self.profiles.applied(key, offset, EVENTS_WAIT_SECONDS):
            log.warning(
                "deciding a request for %s:%s before its events up to offset %d were"
                " applied (waited %.0fs)",
                *key,
                offset,
                EVENTS_WAIT_SECONDS,
            )

    async def _profile(self, key: CustomerKey) -> CustomerProfile | None:
        """The customer's profile (without the signals agent's bookkeeping), if any: the
        table's, else PostgreSQL's (the broker lost the table's log, and the customer has
        sent no event since)."""
        state = await self.profiles.read(key)
        return None if state is None else state.profile()


OfferMessage = OfferRequest | OfferCommand


class Pending(NamedTuple):
    """A message being decided, with the record it came in (acked once it is)."""

    event: EventT[bytes]
    source: SourceRecord
    message: OfferMessage


class Outbox(Protocol):
    """Where the agent's output goes, keyed like the customer's events."""

    async def event(self, event: OfferEvent) -> None:
        """An offer's change or a decision, to ``proffer.offers``."""

    async def outcome(self, outcome: CommandOutcome) -> None:
        """A command's outcome, to ``proffer.offer-command-outcomes``."""

    async def catalog(self, command: MemberCommand) -> None:
        """A grant or use of a catalog offer, to ``proffer.catalog-commands`` (keyed by
        :func:`~proffer_stream.catalog.models.catalog_key`: to its owner)."""


def read_offer_message(source: SourceRecord) -> OfferMessage:
    """Validate one ``proffer.offer-requests`` record, or raise :class:`BadRecord`."""
    message = read_message(OfferRequestsRecord, source.value).root
    require_customer_key(
        source.key, message.tenant_id, message.external_customer_id, "external_customer_id"
    )
    return message


def _processing_error(exc: Exception) -> BadRecord:
    return BadRecord("processing_error", repr(exc))


def _message_id(message: OfferMessage) -> str:
    return message.request_id if isinstance(message, OfferRequest) else message.command_id
