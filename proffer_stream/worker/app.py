"""The worker's composition root: the Faust app, its topics, table, agents and timers."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import faust
from aiokafka import TopicPartition
from faust.types import EventT, TableT

from proffer_stream.catalog.models import (
    CatalogEvent,
    Definition,
    MemberCommand,
    catalog_key,
)
from proffer_stream.catalog.store import CatalogStore as CatalogDefinitions
from proffer_stream.core import metrics
from proffer_stream.core.event_loop import use_uvloop
from proffer_stream.core.heap import collect_less_often, freeze_startup_heap
from proffer_stream.core.identity import partition_key
from proffer_stream.core.settings import Settings
from proffer_stream.ingest.records import RecordLimits
from proffer_stream.kafka.catalog_follower import CatalogFollower
from proffer_stream.kafka.lag import log_ends_now
from proffer_stream.kafka.topics import (
    CATALOG_TABLE,
    EVENT_IDS_TABLE,
    OFFERS_TABLE,
    SIGNALS_TABLE,
    topics_for,
    worker_app_id,
)
from proffer_stream.offers.config import ConfigChange, ConfigOutcome, TenantConfigs, config_key
from proffer_stream.offers.models import CommandOutcome, OfferCommand, OfferEvent
from proffer_stream.offers.policy import Policy
from proffer_stream.offers.rules import rules_file_or_default
from proffer_stream.offers.writer import BuiltinWriter, Writer
from proffer_stream.signals.seen_ids import pack
from proffer_stream.worker.catalog_link import CatalogLink
from proffer_stream.worker.catalog_owner import STAGE as CATALOG_STAGE
from proffer_stream.worker.catalog_owner import CatalogOwner, CatalogStore
from proffer_stream.worker.catalog_owner import encode as encode_catalog
from proffer_stream.worker.config_owner import STAGE as CONFIG_STAGE
from proffer_stream.worker.config_owner import ConfigOwner
from proffer_stream.worker.deadletters import DeadLetters
from proffer_stream.worker.expiry import ExpiryTimers, LostTimers
from proffer_stream.worker.faust_seams.stores import (
    PromptTableManager,
    drop_stores_of_a_lost_log,
)
from proffer_stream.worker.faust_seams.transport import worker_transport
from proffer_stream.worker.faust_seams.version import require_pinned_faust
from proffer_stream.worker.inbox import Inbox, consume_in_batches
from proffer_stream.worker.offer_trigger import OfferTrigger
from proffer_stream.worker.offers_agent import STAGE as OFFERS_STAGE
from proffer_stream.worker.offers_agent import OffersAgent, OffersStore
from proffer_stream.worker.profiles import ProfileStore
from proffer_stream.worker.reroute import Rerouter
from proffer_stream.worker.seen_ids import SeenIdStore
from proffer_stream.worker.signals_agent import STAGE, SignalsAgent
from proffer_stream.worker.state import Checkpoint, TableTransaction
from proffer_stream.worker.tenant_config import ConfigFollower
from proffer_stream.worker.tenants import KnownTenants, PostgresTenants

log = logging.getLogger(__name__)

Batch = TypeVar("Batch")

STORE_OPTIONS: dict[str, Any] = {"write_buffer_size": 4 * 1024 * 1024}
"""RocksDB's memtable per partition store (Faust's default is 64 MB). After a kill -9,
RocksDB replays the write-ahead log of what its memtables held when it opens a store:
with 64 MB that grew with history (the restart after 800,000 events spent ~2 s there),
with 4 MB it is bounded."""
PRODUCER_BATCH_BYTES = 512 * 1024
"""Most bytes of one partition's records the worker's producer sends in one batch."""


def create_app(settings: Settings) -> faust.App:
    """The worker's Faust app with its topics, table and signals agent."""
    require_pinned_faust()
    topics = topics_for(settings)
    app = faust.App(
        worker_app_id(settings.topic_prefix, settings.worker_id),
        broker=[f"kafka://{server}" for server in settings.bootstrap_servers.split(",")],
        store="memory://",
        datadir=str(settings.worker_data_dir),
        processing_guarantee="at_least_once",
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        broker_session_timeout=settings.broker_session_timeout,
        broker_heartbeat_interval=settings.broker_heartbeat_interval,
        consumer_auto_offset_reset="earliest",
        # Offer events with their traces run to several KB: with Faust's 16 KB batches
        # a send waited for the batch before it to drain (11% of the offers agent's
        # samples). Batches up to the request size let sends pile up behind one in flight.
        producer_max_batch_size=PRODUCER_BATCH_BYTES,
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=False,
        web_host="127.0.0.1",
        web_port=settings.worker_web_port,
        TableManager=PromptTableManager,
    )
    events_inbox = Inbox(app, topics.events.name, maxsize=2 * settings.worker_batch_size)
    checkpoint = Checkpoint(app)
    app.transport = worker_transport(
        app,
        settings.bootstrap_servers,
        settings.fetch_max_wait_ms,
        [events_inbox],
        before_commit=checkpoint,
    )
    events_topic = app.topic(topics.events.name, key_type=bytes, value_type=bytes)
    app.topics.add(events_topic)  # subscribed; its records go to the inbox
    deadletter_topic = app.topic(topics.deadletter.name, key_type=bytes, value_type=bytes)
    # Read and written through their transactions, each key in the partition of its
    # customer's records (murmur2 on the key, as producers use), which they name to the
    # store (a RocksDB store reads that partition's database only, not every one).
    state_store = settings.state_store
    table = _table(app, SIGNALS_TABLE, settings, store=f"{state_store}:{SIGNALS_TABLE}")
    offers_table = _table(app, OFFERS_TABLE, settings, store=f"{state_store}:{OFFERS_TABLE}")
    event_ids = _table(
        app,
        EVENT_IDS_TABLE,
        settings,
        store=f"{settings.event_id_store}:{EVENT_IDS_TABLE}",
        # RocksDB's TTL: buckets older than the window (plus a day) go at compaction.
        options={"ttl": (settings.dedup_days + 1) * 86_400},
    )
    requests_topic = app.topic(topics.offer_requests.name, key_type=bytes, value_type=bytes)
    config_commands_topic = app.topic(
        topics.tenant_config_commands.name, key_type=bytes, value_type=bytes
    )
    configs = TenantConfigs(rules_file_or_default(settings.rules_file), Policy())
    config = ConfigFollower(configs, settings)
    # Every tenant's catalog definitions, for rules whose offers come from the catalog.
    catalog_follower = CatalogFollower(CatalogDefinitions(), settings)
    # Profiles first: a remembered id chunk never reaches the changelog before the
    # profile that counted it.
    profiles = ProfileStore(
        checkpoint.register(TableTransaction(table, bytes)),
        settings.partitions,
        settings.database_url,
        settings.dedup_days,
    )
    seen_ids = SeenIdStore(
        checkpoint.register(TableTransaction(event_ids, pack)), settings.dedup_days
    )
    agent = SignalsAgent(
        profiles,
        DeadLetters(deadletter_topic, STAGE),
        Rerouter(
            app, topics.events.name, lambda: app.consumer.topic_partitions(topics.events.name)
        ),
        seen_ids,
        KnownTenants(PostgresTenants(settings.database_url)),
        RecordLimits.of(settings),
        OfferTrigger(requests_topic, configs),
    )

    offers_store = OffersStore(
        checkpoint.register(TableTransaction(offers_table, bytes)),
        settings.partitions,
        settings.database_url,
    )
    timers = ExpiryTimers()
    offers_agent = OffersAgent(
        offers_store,
        profiles,
        writer_for(settings),
        DeadLetters(deadletter_topic, OFFERS_STAGE),
        TopicOutbox(
            app, topics.offers.name, topics.offer_outcomes.name, topics.catalog_commands.name
        ),
        configs=configs,
        catalog=CatalogLink(
            catalog_follower.store, settings.default_language, settings.default_timezone
        ),
        concurrency=settings.llm_concurrency,
        max_in_flight=offers_in_flight(settings),
        on_failure=stop_without_acking,
        on_saved=timers.schedule,
    )

    @app.task  # type: ignore[untyped-decorator]
    async def signals() -> None:
        await consume_in_batches(
            app,
            events_inbox,
            after(config.ready, agent.process),
            settings.worker_batch_size,
            settings.worker_batch_seconds,
            on_failure=stop_without_acking,
            # Profiles only: ids and offers wait for the commit's checkpoint.
            after_batch=flush_when_caught_up(
                functools.partial(checkpoint.only, [profiles.state]),
                settings.profile_flush_seconds,
            ),
        )

    @app.agent(requests_topic, name="offers", concurrency=1)
    async def offers(stream: faust.StreamT[bytes]) -> None:
        # Tenant config and catalog read, and the restoring partitions known (after each
        # rebalance).
        process = after(
            config.ready,
            after(
                catalog_follower.ready,
                after(offers_store.restoring_known, offers_agent.process),
            ),
        )
        await _in_batches(stream, process, offers_batch_size(settings), settings)

    config_owner = ConfigOwner(
        configs,
        config,
        ConfigTopicsOutbox(app, topics.tenant_config.name, topics.tenant_config_outcomes.name),
        DeadLetters(deadletter_topic, CONFIG_STAGE),
    )

    @app.agent(config_commands_topic, name="tenant-config", concurrency=1)
    async def tenant_config(stream: faust.StreamT[bytes]) -> None:
        await _in_batches(stream, after(config.ready, config_owner.process), 100, settings)

    # Keyed by tenant and catalog offer: each offer's state in its commands' partition.
    catalog_table = _table(app, CATALOG_TABLE, settings, store=f"{state_store}:{CATALOG_TABLE}")
    catalog_commands_topic = app.topic(
        topics.catalog_commands.name, key_type=bytes, value_type=bytes
    )
    catalog_owner = CatalogOwner(
        CatalogStore(
            checkpoint.register(TableTransaction(catalog_table, encode_catalog)),
            settings.database_url,
        ),
        CatalogTopicsOutbox(
            app, topics.catalog.name, topics.catalog_events.name, topics.offer_requests.name
        ),
        DeadLetters(deadletter_topic, CATALOG_STAGE),
    )

    @app.agent(catalog_commands_topic, name="catalog", concurrency=1)
    async def catalog(stream: faust.StreamT[bytes]) -> None:
        await _in_batches(stream, catalog_owner.process, settings.worker_batch_size, settings)

    @app.task  # type: ignore[untyped-decorator]
    async def leave_startup_heap_out_of_collections() -> None:
        freeze_startup_heap()

    @app.task  # type: ignore[untyped-decorator]
    async def follow_tenant_config() -> None:
        await config.run()

    @app.task  # type: ignore[untyped-decorator]
    async def follow_catalog() -> None:
        await catalog_follower.run()

    @app.timer(10.0)  # type: ignore[untyped-decorator]
    async def report_progress() -> None:
        agent.report()

    async def offers_changelog_ends(partitions: list[int]) -> dict[int, int]:
        changelog = topics.offers_changelog.name
        wanted = [TopicPartition(changelog, p) for p in partitions]
        ends = await log_ends_now(settings.bootstrap_servers, wanted)
        return {tp.partition: end for tp, end in ends.items()}

    lost_timers = LostTimers(offers_store, timers, offers_changelog_ends)

    @app.on_partitions_revoked.connect
    async def forget_kept_state(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        """Profiles and ids kept in memory may belong to partitions that move: read them
        afresh. (The commit before this checkpointed; what it left is checkpointed now.)"""
        lost_timers.cancel()
        offers_store.forget_restoring()
        await checkpoint()
        profiles.forget()
        seen_ids.forget()

    @app.on_rebalance_complete.connect
    async def reload_expiry_timers(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        """The tables hold this worker's share now: time the expiries of its offers, and
        of the open offers PostgreSQL has of customers the table lacks."""
        timers.reload(offers_store.all())
        log.info("expiry timers: %d open offers", len(timers))
        assigned = {
            tp.partition
            for tp in app.consumer.assignment()
            if tp.topic == requests_topic.get_topic_name()
        }
        lost_timers.start(assigned)

    @app.timer(settings.expiry_check_seconds)  # type: ignore[untyped-decorator]
    async def expire_offers() -> None:
        for command in timers.due(datetime.now(UTC), offers_store.may_expire):
            await requests_topic.send(
                key=partition_key(command.tenant_id, command.external_customer_id),
                value=command.model_dump_json().encode(),
            )
            metrics.OFFER_EXPIRIES_DUE.inc()

    return app


class TopicOutbox:
    """The offers agent's output: events to ``proffer.offers`` keyed like the customer,
    command outcomes to ``proffer.offer-command-outcomes``, grants and uses of catalog
    offers to ``proffer.catalog-commands`` keyed by catalog offer.

    Straight to the app's producer, as the tables' changelog records are: Faust's
    ``Topic.send`` (a future per message, its callbacks) cost twice the producer's send.
    Faust flushes the producer before it commits, so nothing acked is left unsent.
    """

    def __init__(self, app: faust.App, offers: str, outcomes: str, catalog_commands: str) -> None:
        self.app = app
        self.offers = offers
        self.outcomes = outcomes
        self.catalog_commands = catalog_commands

    async def event(self, event: OfferEvent) -> None:
        key = partition_key(event.tenant_id, event.external_customer_id)
        await self._send(self.offers, key, event.model_dump_json().encode())

    async def outcome(self, outcome: CommandOutcome) -> None:
        key = outcome.command_id.encode()
        await self._send(self.outcomes, key, outcome.model_dump_json().encode())

    async def catalog(self, command: MemberCommand) -> None:
        key = catalog_key(command.tenant_id, command.offer_id)
        await self._send(self.catalog_commands, key, command.model_dump_json().encode())

    async def _send(self, topic: str, key: bytes, value: bytes) -> None:
        await self.app.producer.send(topic, key, value, None, None, None)


class ConfigTopicsOutbox:
    """The tenant config agent's output: changes to ``proffer.tenant-config`` and outcomes
    to ``proffer.tenant-config-outcomes``, both keyed by tenant and kind."""

    def __init__(self, app: faust.App, changes: str, outcomes: str) -> None:
        self.app = app
        self.changes = changes
        self.outcomes = outcomes

    async def change(self, change: ConfigChange) -> None:
        key = config_key(change.tenant_id, change.kind)
        await self.app.producer.send(
            self.changes, key, change.model_dump_json().encode(), None, None, None
        )

    async def outcome(self, outcome: ConfigOutcome) -> None:
        key = config_key(outcome.tenant_id, outcome.kind)
        await self.app.producer.send(
            self.outcomes, key, outcome.model_dump_json().encode(), None, None, None
        )


class CatalogTopicsOutbox:
    """The catalog owner's output: definitions to ``proffer.catalog`` and decisions to
    ``proffer.catalog-events``, keyed like the command (straight to the producer, as
    :class:`TopicOutbox`); answers to generated offers' grants to
    ``proffer.offer-requests``, keyed like the customer."""

    def __init__(self, app: faust.App, definitions: str, events: str, answers: str) -> None:
        self.app = app
        self.definitions = definitions
        self.events = events
        self.answers = answers

    async def definition(self, key: bytes, definition: Definition) -> None:
        value = definition.model_dump_json().encode()
        await self.app.producer.send(self.definitions, key, value, None, None, None)

    async def event(self, key: bytes, event: CatalogEvent) -> None:
        value = event.model_dump_json().encode()
        await self.app.producer.send(self.events, key, value, None, None, None)

    async def answer(self, command: OfferCommand) -> None:
        key = partition_key(command.tenant_id, command.external_customer_id)
        value = command.model_dump_json().encode()
        await self.app.producer.send(self.answers, key, value, None, None, None)


def writer_for(settings: Settings) -> Writer:
    """The model writer when a model is configured (base URL and model), else the built-in.

    The model's client (the openai SDK: 0.45 s of imports, a third of the worker's) is
    imported only then: a worker without a model starts, and restarts, sooner.
    """
    if settings.model_configured:
        from proffer_stream.llm.writer import LLMWriter

        return LLMWriter.from_settings(settings)
    return BuiltinWriter()


def _table(
    app: faust.App,
    name: str,
    settings: Settings,
    store: str,
    options: dict[str, Any] | None = None,
) -> TableT[bytes, bytes]:
    """A table of raw bytes keyed like the customer's records, one partition per topic's,
    in ``store`` with :data:`STORE_OPTIONS` and ``options``."""
    table: TableT[bytes, bytes] = app.Table(
        name,
        default=None,
        key_type=bytes,
        value_type=bytes,
        partitions=settings.partitions,
        store=store,
        options={**STORE_OPTIONS, **(options or {})},
    )
    return table


def flush_when_caught_up(
    flush: Callable[[], Awaitable[None]], most_seconds: float
) -> Callable[[bool], Awaitable[None]]:
    """Run ``flush`` after a batch that leaves its agent caught up, or that ends
    ``most_seconds`` or more after the last flush."""
    last = time.monotonic()

    async def after_batch(caught_up: bool) -> None:
        nonlocal last
        if caught_up or time.monotonic() - last >= most_seconds:
            last = time.monotonic()
            await flush()

    return after_batch


def after(
    ready: asyncio.Event, process: Callable[[Batch], Awaitable[None]]
) -> Callable[[Batch], Awaitable[None]]:
    """``process``, once ``ready`` is set: no batch is judged by stale tenant rules.

    The agents iterate their streams from the start (Faust seeks and resumes them during
    recovery); only the processing of the first batch waits.
    """

    async def process_when_ready(batch: Batch) -> None:
        await ready.wait()
        await process(batch)

    return process_when_ready


async def _in_batches(
    stream: faust.StreamT[bytes],
    process: Callable[[Sequence[EventT[bytes]]], Awaitable[None]],
    size: int,
    settings: Settings,
) -> None:
    """Feed ``process`` the stream in batches; what escapes it stops the worker unacked."""
    async for batch in stream.take_events(  # type: ignore[attr-defined]
        size, within=settings.worker_batch_seconds
    ):
        try:
            await process(batch)
        except Exception as exc:  # not CancelledError: shutdown commits what is acked
            stop_without_acking(exc)


def offers_batch_size(settings: Settings) -> int:
    """Requests the offers agent takes at once: with a model, as many as may be written at
    once, so that a batch's requests start writing as soon as they are read."""
    if settings.model_configured:
        return min(settings.worker_batch_size, settings.llm_concurrency)
    return settings.worker_batch_size


def offers_in_flight(settings: Settings) -> int:
    """Most undecided requests the offers agent holds before it reads more.

    With a model, twice the writes in flight: a write that ends finds the next request
    read and waiting, and a rebalance waits for no more than two rounds of writes.
    """
    if settings.model_configured:
        return 2 * settings.llm_concurrency
    return settings.worker_batch_size


def stop_without_acking(exc: BaseException) -> None:
    """Exit at once, so that Faust cannot ack a batch that was not applied.

    Records that cannot be applied are dead-lettered one by one, so this is for what
    is left: a bug, or a failure to write the table. An exception that leaves a
    ``take_events`` loop acks the whole batch, and the buffer keeps acking records the
    restarted agent never sees (faust-streaming #315; measured: 4-10 records lost per
    failure). Exiting leaves the commit before the batch; a supervisor (`up`, or your
    orchestrator) restarts the worker, which applies the batch again.
    """
    log.critical("an agent failed; exiting without acking the batch", exc_info=exc)
    logging.shutdown()
    os._exit(70)


def run_worker(settings: Settings) -> None:
    """Run the worker until SIGINT/SIGTERM."""
    use_uvloop()
    collect_less_often()
    metrics.serve_metrics(settings.metrics_port)
    (settings.worker_data_dir).mkdir(parents=True, exist_ok=True)
    app = create_app(settings)
    drop_stores_of_a_lost_log(app, settings.bootstrap_servers)
    worker = faust.Worker(app, loglevel=settings.log_level.lower(), quiet=True)
    # At WARNING and above Faust's progress spinner sets the root logger to DEBUG, so
    # every library debug call builds a record (3% of a profile of the worker at one
    # event per record). A service's logs need no spinner.
    worker.spinner = None
    # The model's client logs every HTTP request at INFO: a line per offer is a flood.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    worker.execute_from_commandline()
