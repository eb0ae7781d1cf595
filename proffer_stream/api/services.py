"""What the request handlers share: the PostgreSQL pool, the Kafka producer, the key cache.

Built once per gateway by the app's lifespan and reached through ``api.deps``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import OrderedDict
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, MessageSizeTooLargeError

from proffer_stream.api.errors import ApiError
from proffer_stream.api.models import ErrorDetail
from proffer_stream.api.signing import signing_key
from proffer_stream.catalog.name_order import NameOrders
from proffer_stream.catalog.store import CatalogStore
from proffer_stream.core.settings import Settings
from proffer_stream.db import keys
from proffer_stream.db.issued import forget_issued_before
from proffer_stream.db.migrations import require_current
from proffer_stream.db.pool import TRANSIENT_ERRORS, connect_pool
from proffer_stream.db.replies import ReplyListener
from proffer_stream.decisions.live import LiveCatalog
from proffer_stream.kafka.catalog_follower import CatalogFollower
from proffer_stream.kafka.progress import GroupWatch, ProgressWatch
from proffer_stream.kafka.topics import topics_for, worker_app_id
from proffer_stream.offers.rules import rules_file_or_default
from proffer_stream.placements.candidates import LivePlacements

log = logging.getLogger(__name__)

CATALOG_READY_SECONDS = 30.0
"""Longest a gateway waits at start for the catalog topic to be read."""
FORGET_ISSUED_EVERY_SECONDS = 3600.0
"""How often a gateway forgets the issued ids older than ``Settings.issued_days``."""
KEY_CACHE_SECONDS = 1.0
"""How long a key's tenant is cached: a revoked key stops working within this."""


LAST_OFFSETS_KEPT = 100_000
"""Customers whose last accepted record's offset the gateway remembers (about 100 bytes each)."""


class EventPublisher:
    """Puts records on ``proffer.events`` and answers only once Kafka has them.

    Remembers, for the customers it published events for lately, the offset of the last
    one (:meth:`last_event_offset`): an offer request carries it, so that the offers agent
    decides on those events even when the request overtakes them (another topic).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topic = topics_for(settings).events.name
        self.timeout = settings.produce_timeout_seconds
        self._producer: AIOKafkaProducer | None = None
        self._last_offsets: OrderedDict[bytes, int] = OrderedDict()

    def last_event_offset(self, key: bytes) -> int | None:
        """The offset of the last record this gateway put on ``proffer.events`` with
        ``key``, if it remembers one."""
        return self._last_offsets.get(key)

    async def start(self) -> None:
        """Connect; the producer needs a running event loop, so it is made here."""
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.bootstrap_servers,
            acks="all",
            linger_ms=2,
            request_timeout_ms=int(self.timeout * 1000),
            max_request_size=self.settings.max_record_bytes,
        )
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    @property
    def producer(self) -> AIOKafkaProducer:
        assert self._producer is not None, "gateway not started"
        return self._producer

    async def publish(self, key: bytes, value: bytes, topic: str | None = None) -> None:
        """Put one record on ``topic`` (``proffer.events`` by default) and wait until Kafka
        has it, or raise a 503.

        One deadline covers both the wait for metadata (``send``) and the delivery, so
        an outage is answered within the produce timeout, not twice it.
        """
        try:
            async with asyncio.timeout(self.timeout):  # no task per call, unlike wait_for
                delivery = await self.producer.send(topic or self.topic, value=value, key=key)
                metadata = await delivery
        except MessageSizeTooLargeError as exc:  # ours or the broker's limit: not an outage
            raise self._too_large(len(key) + len(value)) from exc
        except (TimeoutError, KafkaError) as exc:
            log.warning("Kafka did not take a record: %r", exc)
            raise ApiError(
                503,
                "broker_unavailable",
                "The event broker is unavailable; nothing was accepted. "
                "Retry later (events with an id are counted once).",
            ) from exc
        if (topic or self.topic) == self.topic:
            self._remember(key, metadata.offset)

    def _too_large(self, size: int) -> ApiError:
        limit = self.settings.max_record_bytes
        return ApiError(
            413,
            "record_too_large",
            f"The record this request makes is {size} bytes (as the gateway writes it),"
            f" over the most one record may carry ({limit} bytes, or the broker's own"
            " limit); nothing was accepted. Send fewer or smaller events.",
            [ErrorDetail(loc="body", message=f"the record must stay under {limit} bytes")],
        )

    def _remember(self, key: bytes, offset: int) -> None:
        offsets = self._last_offsets
        offsets[key] = max(offset, offsets.pop(key, offset))
        if len(offsets) > LAST_OFFSETS_KEPT:
            offsets.popitem(last=False)

    async def check(self) -> None:
        """Ask the brokers for fresh metadata; raises ``KafkaError`` when none answers."""
        await self.producer.client.fetch_all_metadata()


class KeyCache:
    """API key -> its tenant and name, cached for a short while so each request costs no
    query."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._entries: dict[str, tuple[keys.KeyOwner, float]] = {}
        self._hashes: dict[str, tuple[keys.KeyOwner, float]] = {}

    async def owner_of(self, key: str) -> keys.KeyOwner | None:
        """The key's tenant and name, or ``None``; raises a 503 when PostgreSQL cannot say."""
        cached = self._entries.get(key)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        owner = await self._look_up(keys.key_owner(self.pool, key))
        if owner is not None:
            self._entries[key] = (owner, time.monotonic() + KEY_CACHE_SECONDS)
        return owner

    async def owner_of_hash(self, key_hash: str) -> keys.KeyOwner | None:
        """As :meth:`owner_of`, for a key known by its hash (a dashboard session's)."""
        cached = self._hashes.get(key_hash)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        owner = await self._look_up(keys.key_owner_by_hash(self.pool, key_hash))
        if owner is not None:
            self._hashes[key_hash] = (owner, time.monotonic() + KEY_CACHE_SECONDS)
        return owner

    @staticmethod
    async def _look_up(
        query: Coroutine[Any, Any, keys.KeyOwner | None],
    ) -> keys.KeyOwner | None:
        try:
            return await query
        except TRANSIENT_ERRORS as exc:
            raise ApiError(503, "database_unavailable", "Cannot check the API key now.") from exc


class Services:
    """The gateway's connections, started and stopped with the app."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.publisher = EventPublisher(settings)
        self.progress = _progress_watch(settings)
        self.default_rules = rules_file_or_default(settings.rules_file)
        self.replies = ReplyListener(settings.database_url)
        self.catalog = CatalogStore()
        self.catalog_follower = CatalogFollower(self.catalog, settings)
        self.live_catalog = LiveCatalog(self.catalog)
        self.name_orders = NameOrders(self.catalog)
        self.live_placements = LivePlacements(self.live_catalog)
        self._pool: asyncpg.Pool | None = None
        self._keys: KeyCache | None = None
        self._following: asyncio.Task[None] | None = None
        self._forgetting: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._pool = await connect_pool(self.settings.database_url)
        await require_current(self._pool)
        self._keys = KeyCache(self._pool)
        await self.replies.start()
        await self.publisher.start()
        self._following = asyncio.create_task(self.catalog_follower.run())
        self._forgetting = asyncio.create_task(self._forget_issued())
        try:
            async with asyncio.timeout(CATALOG_READY_SECONDS):
                await self.catalog_follower.ready.wait()
        except TimeoutError:
            log.warning("the catalog topic is not read yet; members' offers may lag")
        log.info("gateway connected: topic %s", self.publisher.topic)

    async def stop(self) -> None:
        for task in (self._following, self._forgetting):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await self.publisher.stop()
        await self.replies.stop()
        await self.progress.stop()
        if self._pool is not None:
            await self._pool.close()

    async def _forget_issued(self) -> None:
        """Every :data:`FORGET_ISSUED_EVERY_SECONDS`, from start: forget the issued ids
        older than ``issued_days`` (each gateway does; the deletes are idempotent)."""
        keep = timedelta(days=self.settings.issued_days)
        while True:
            try:
                forgotten = await forget_issued_before(self.pool, datetime.now(UTC) - keep)
            except TRANSIENT_ERRORS as exc:
                log.warning("could not forget old issued ids now (%r); next in an hour", exc)
            else:
                if forgotten:
                    log.info("forgot %d issued ids older than %s", forgotten, keep)
            await asyncio.sleep(FORGET_ISSUED_EVERY_SECONDS)

    @property
    def pool(self) -> asyncpg.Pool:
        assert self._pool is not None, "gateway not started"
        return self._pool

    @functools.cached_property
    def signing_key(self) -> bytes:
        """The key encoded catalog offers are signed with (made on first use if unset)."""
        return signing_key(self.settings)

    @property
    def keys(self) -> KeyCache:
        assert self._keys is not None, "gateway not started"
        return self._keys


def _progress_watch(settings: Settings) -> ProgressWatch:
    """The consumer groups the gateway's readiness depends on, each with every topic it
    reads: the worker (signals and offers agents) and the sink."""
    topics = topics_for(settings)
    worker = worker_app_id(settings.topic_prefix, settings.worker_id)
    return ProgressWatch(
        settings.bootstrap_servers,
        [
            GroupWatch("worker", worker, [t.name for t in topics.worker_inputs()]),
            GroupWatch("sink", settings.sink_group, [t.name for t in topics.sink_inputs()]),
        ],
        settings.stall_seconds,
    )
