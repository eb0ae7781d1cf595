"""Following ``proffer.catalog``: every tenant's catalog definitions, in a process's memory.

Like :class:`~proffer_stream.worker.tenant_config.ConfigFollower` for rules and policy:
the whole compacted topic is read (no consumer group: every process needs every
tenant) into a :class:`~proffer_stream.catalog.store.CatalogStore`, then followed, so a
definition is known everywhere within a fetch. The gateway answers a member's offers
from it without reading definitions from PostgreSQL, and a definition change waits for
it (:meth:`CatalogFollower.wait_for`), so that the gateway that answered it shows it.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from proffer_stream.catalog.models import CatalogDefinition, CollectionDefinition
from proffer_stream.catalog.store import CatalogStore, Definition
from proffer_stream.core.settings import Settings
from proffer_stream.kafka.lag import read_to_highwater, topic_partitions
from proffer_stream.kafka.topics import topics_for

log = logging.getLogger(__name__)

CATCH_UP_SECONDS = 30.0
"""Longest :attr:`CatalogFollower.ready` waits for the topic to be read at start."""
RETRY_SECONDS = 1.0
"""Wait before reading again after the broker failed the follower."""
_COLLECTION = b"\x00collection\x00"


def parse_definition(key: bytes | None, value: bytes) -> Definition:
    """A record of ``proffer.catalog``: a collection if its key says so, else an offer."""
    if key is not None and _COLLECTION in key:
        return CollectionDefinition.model_validate_json(value)
    return CatalogDefinition.model_validate_json(value)


class CatalogFollower:
    """Keeps ``store`` at the latest version of every catalog offer and collection."""

    def __init__(self, store: CatalogStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.topic = topics_for(settings).catalog.name
        self.ready = asyncio.Event()
        self._changed = asyncio.Event()

    async def wait_for(
        self, tenant_id: str, target: str, item_id: int, version: int, deadline: float
    ) -> bool:
        """Whether the store holds ``version`` (or a later one) of the item by
        ``deadline`` (monotonic)."""
        while self.store.version(tenant_id, target, item_id) < version:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._changed.clear()
            try:
                async with asyncio.timeout(remaining):
                    await self._changed.wait()
            except TimeoutError:
                pass
        return True

    async def run(self) -> None:
        """Read the topic to its end, then follow it; start again after a broker failure."""
        while True:
            try:
                await self._follow()
            except KafkaError as exc:
                log.warning("following %s failed (%r); reading again", self.topic, exc)
            await asyncio.sleep(RETRY_SECONDS)

    async def _follow(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=self.settings.fetch_max_wait_ms,
        )
        await consumer.start()
        try:
            partitions = await topic_partitions(consumer, [self.topic])
            if not partitions:  # no topic yet: nothing is defined; look again later
                self.ready.set()
                return
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            started = time.monotonic()
            while True:
                fetched = await consumer.getmany(timeout_ms=500 if self.ready.is_set() else 20)
                changed = False
                for records in fetched.values():
                    for record in records:
                        changed |= self._apply(record.key, record.value)
                if changed:
                    self._changed.set()
                if not self.ready.is_set() and (
                    (not fetched and await read_to_highwater(consumer, partitions))
                    or time.monotonic() - started > CATCH_UP_SECONDS
                ):
                    self.ready.set()
                    log.info("catalog read: %s", self.topic)
        finally:
            await consumer.stop()

    def _apply(self, key: bytes | None, value: bytes | None) -> bool:
        if value is None:
            return False
        try:
            item = parse_definition(key, value)
        except ValidationError as exc:  # the owner validates; this is another producer's
            log.warning("skipped a catalog record that does not parse: %s", exc)
            return False
        return self.store.apply(item)
