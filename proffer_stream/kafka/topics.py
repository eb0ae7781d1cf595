"""Every topic of the pipeline: one owner for its name and its config, and its creation.

Changelog topics are always compacted: a table's changelog keeps the latest value per
key, so recovery reads one record per key instead of every update ever made. Faust
creates a changelog only when it is missing and never fixes the config of one that
exists, so the changelog is declared here like every other topic.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    TopicAlreadyExistsError,
    for_code,
)

from proffer_stream.core.errors import Unavailable
from proffer_stream.core.settings import Settings
from proffer_stream.kafka.alter_configs import set_topic_config

log = logging.getLogger(__name__)

COMPACTED = {"cleanup.policy": "compact"}
SIGNALS_TABLE = "signals"
EVENT_IDS_TABLE = "event-ids"
OFFERS_TABLE = "offers"
CATALOG_TABLE = "catalog"
DAY_MS = 86_400_000


@dataclass(frozen=True)
class TopicSpec:
    """A topic's name and the config it is created with."""

    name: str
    config: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Topics:
    """Every topic of the pipeline, with the configured prefix applied."""

    events: TopicSpec
    offer_requests: TopicSpec
    offers: TopicSpec
    offer_outcomes: TopicSpec
    deadletter: TopicSpec
    tenant_config: TopicSpec
    tenant_config_commands: TopicSpec
    tenant_config_outcomes: TopicSpec
    signals_changelog: TopicSpec
    event_ids_changelog: TopicSpec
    offers_changelog: TopicSpec
    catalog: TopicSpec
    catalog_commands: TopicSpec
    catalog_events: TopicSpec
    catalog_changelog: TopicSpec
    decisions: TopicSpec

    def all(self) -> list[TopicSpec]:
        return [
            self.events,
            self.offer_requests,
            self.offers,
            self.offer_outcomes,
            self.deadletter,
            self.tenant_config,
            self.tenant_config_commands,
            self.tenant_config_outcomes,
            self.signals_changelog,
            self.event_ids_changelog,
            self.offers_changelog,
            self.catalog,
            self.catalog_commands,
            self.catalog_events,
            self.catalog_changelog,
            self.decisions,
        ]

    def worker_inputs(self) -> list[TopicSpec]:
        """What the worker's consumer group reads: events (the signals agent), requests
        and commands (the offers agent), config commands (the tenant config agent) and
        catalog commands (the catalog owner)."""
        return [
            self.events,
            self.offer_requests,
            self.tenant_config_commands,
            self.catalog_commands,
        ]

    def sink_inputs(self) -> list[TopicSpec]:
        """What the sink's consumer group reads: every topic it projects."""
        return [
            self.events,
            self.signals_changelog,
            self.offers,
            self.offer_outcomes,
            self.tenant_config,
            self.tenant_config_outcomes,
            self.catalog,
            self.catalog_events,
            self.decisions,
        ]


def worker_app_id(prefix: str, worker_id: str) -> str:
    """The Faust app id, which is also the worker's consumer group."""
    return f"{prefix}{worker_id}"


def changelog_name(app_id: str, table: str) -> str:
    """The changelog Faust keeps for ``table``: ``<app id>-<table>-changelog``."""
    return f"{app_id}-{table}-changelog"


@functools.lru_cache(maxsize=16)
def topics(prefix: str, worker_id: str, dedup_days: int = 7) -> Topics:
    """The pipeline's topics for a topic prefix, a worker id and the days ids are kept
    (made once: the gateway names a topic per command).

    The event-ids changelog is compacted and also deletes what is older than the window
    (plus a day), so days no customer came back to do not stay for ever.
    """
    app_id = worker_app_id(prefix, worker_id)
    event_ids_retention = {"retention.ms": str((dedup_days + 1) * DAY_MS)}
    return Topics(
        events=TopicSpec(f"{prefix}proffer.events"),
        offer_requests=TopicSpec(f"{prefix}proffer.offer-requests"),
        # The offers' history: kept for ever, so the sink can rebuild its tables from it.
        offers=TopicSpec(f"{prefix}proffer.offers", {"retention.ms": "-1"}),
        offer_outcomes=TopicSpec(
            f"{prefix}proffer.offer-command-outcomes", {"retention.ms": str(DAY_MS)}
        ),
        deadletter=TopicSpec(f"{prefix}proffer.deadletter"),
        tenant_config=TopicSpec(f"{prefix}proffer.tenant-config", COMPACTED),
        tenant_config_commands=TopicSpec(f"{prefix}proffer.tenant-config-commands"),
        tenant_config_outcomes=TopicSpec(
            f"{prefix}proffer.tenant-config-outcomes", {"retention.ms": str(DAY_MS)}
        ),
        signals_changelog=TopicSpec(changelog_name(app_id, SIGNALS_TABLE), COMPACTED),
        event_ids_changelog=TopicSpec(
            changelog_name(app_id, EVENT_IDS_TABLE),
            {"cleanup.policy": "compact,delete", **event_ids_retention},
        ),
        offers_changelog=TopicSpec(changelog_name(app_id, OFFERS_TABLE), COMPACTED),
        # Catalog definitions: tenant config, the latest version of each offer and collection.
        catalog=TopicSpec(f"{prefix}proffer.catalog", COMPACTED),
        # Definition changes and members' grants, uses, likes, seen and clicks, keyed by
        # tenant and catalog offer: one owner decides each offer's limits.
        catalog_commands=TopicSpec(f"{prefix}proffer.catalog-commands"),
        # The owners' decisions, with the counts they left: kept for ever (the projection
        # is rebuilt from it).
        catalog_events=TopicSpec(f"{prefix}proffer.catalog-events", {"retention.ms": "-1"}),
        catalog_changelog=TopicSpec(changelog_name(app_id, CATALOG_TABLE), COMPACTED),
        # Every decision and every reaction to one, keyed by tenant and customer: kept for
        # ever (attribution, and the projection is rebuilt from it).
        decisions=TopicSpec(f"{prefix}proffer.decisions", {"retention.ms": "-1"}),
    )


def topics_for(settings: Settings) -> Topics:
    """The topics these settings name."""
    return topics(settings.topic_prefix, settings.worker_id, settings.dedup_days)


async def wait_for_broker(bootstrap_servers: str, timeout: float = 30.0) -> None:
    """Wait until the broker answers metadata requests, or raise :class:`Unavailable`."""
    deadline = time.monotonic() + timeout
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=3000)
        try:
            await admin.start()
            await admin.list_topics()
            return
        except KafkaError as exc:
            if time.monotonic() > deadline:
                raise Unavailable(f"Kafka at {bootstrap_servers} did not answer: {exc}") from exc
            await asyncio.sleep(0.2)
        finally:
            await admin.close()


async def ensure_topics(settings: Settings) -> list[str]:
    """Create the missing topics with their config, and fix the config of existing ones.

    Returns the names created.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        specs = topics_for(settings).all()
        for spec in specs:
            if spec.name in existing:
                await _align_config(admin, spec)
        missing = {spec.name: spec for spec in specs if spec.name not in existing}
        if not missing:
            return []
        # One request for all (one per topic was most of a test's setup); the answer has
        # an error code per topic instead of raising.
        response = await admin.create_topics(
            [_new_topic(spec, settings) for spec in missing.values()]
        )
        created = []
        for name, code, *_ in response.topic_errors:
            if code == 0:
                created.append(name)
            elif for_code(code) is TopicAlreadyExistsError:  # made meanwhile by another
                await _align_config(admin, missing[name])
            else:
                raise for_code(code)(f"creating topic {name}")
        return created
    except KafkaConnectionError as exc:
        raise Unavailable(f"Kafka at {settings.bootstrap_servers}: {exc}") from exc
    finally:
        await admin.close()


def _new_topic(spec: TopicSpec, settings: Settings) -> NewTopic:
    return NewTopic(
        spec.name, settings.partitions, settings.replication_factor, topic_configs=spec.config
    )


async def topic_config(admin: AIOKafkaAdminClient, name: str) -> dict[str, str]:
    """The config of an existing topic, as the broker reports it."""
    resource = ConfigResource(ConfigResourceType.TOPIC, name)
    responses = await admin.describe_configs([resource])
    config: dict[str, str] = {}
    for response in responses:
        for _code, _message, _type, _name, entries in response.resources:
            for entry in entries:
                config[entry[0]] = entry[1]
    return config


async def _align_config(admin: AIOKafkaAdminClient, spec: TopicSpec) -> None:
    """Set what differs from the spec on a topic that already exists (e.g. compaction)."""
    if not spec.config:
        return
    current = await topic_config(admin, spec.name)
    wrong = {k: v for k, v in spec.config.items() if current.get(k) != v}
    if not wrong:
        return
    await set_topic_config(admin, spec.name, wrong)
    log.warning("topic %s existed with other config; set %s", spec.name, wrong)
