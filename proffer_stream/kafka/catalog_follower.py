"""Following ``proffer.catalog``: every tenant's catalog definitions, in a process's memory.

A :class:`~proffer_stream.kafka.follower.TopicFollower` (like the tenant config's): the
whole compacted topic is read into a :class:`~proffer_stream.catalog.store.CatalogStore`,
then followed, so a definition is known everywhere within a fetch. The gateway answers a
member's offers from it without reading definitions from PostgreSQL, and a definition
change waits for it (:meth:`CatalogFollower.wait_for`), so that the gateway that
answered it shows it.
"""

from __future__ import annotations

import asyncio
import logging
import time

from pydantic import ValidationError

from proffer_stream.catalog.models import (
    CatalogDefinition,
    CollectionDefinition,
    DefinitionTarget,
    IntegrationDefinition,
)
from proffer_stream.catalog.store import CatalogStore, Definition
from proffer_stream.core.settings import Settings
from proffer_stream.kafka.follower import TopicFollower
from proffer_stream.kafka.topics import topics_for

log = logging.getLogger(__name__)

_COLLECTION = b"\x00collection\x00"
_INTEGRATION = b"\x00integration\x00"


def parse_definition(key: bytes | None, value: bytes) -> Definition:
    """A record of ``proffer.catalog``: a collection or an integration if its key says
    so, else an offer."""
    if key is not None and _COLLECTION in key:
        return CollectionDefinition.model_validate_json(value)
    if key is not None and _INTEGRATION in key:
        return IntegrationDefinition.model_validate_json(value)
    return CatalogDefinition.model_validate_json(value)


class CatalogFollower(TopicFollower):
    """Keeps ``store`` at the latest version of every catalog offer and collection."""

    def __init__(self, store: CatalogStore, settings: Settings) -> None:
        super().__init__(settings, topics_for(settings).catalog.name, "catalog")
        self.store = store

    async def wait_for(
        self, tenant_id: str, target: DefinitionTarget, item_id: int, version: int, deadline: float
    ) -> bool:
        """Whether the store holds ``version`` (or a later one) of the item by
        ``deadline`` (monotonic)."""
        while self.store.version(tenant_id, target, item_id) < version:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                async with asyncio.timeout(remaining):
                    await self.advanced()
            except TimeoutError:
                pass
        return True

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        if value is None:
            return
        try:
            item = parse_definition(key, value)
        except ValidationError as exc:  # the owner validates; this is another producer's
            log.warning("skipped a catalog record that does not parse: %s", exc)
            return
        self.store.apply(item)
