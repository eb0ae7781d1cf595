"""The schema registry: JSON Schemas of the topic messages, generated into schemas/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from proffer_stream.catalog.models import CatalogCommandRecord, CatalogEvent, CatalogRecord
from proffer_stream.core.settings import Settings
from proffer_stream.decisions.models import DecisionRecord
from proffer_stream.ingest.models import EventBatch
from proffer_stream.kafka.deadletter import DeadLetter
from proffer_stream.kafka.topics import Topics, topics
from proffer_stream.offers.config import ConfigChange, ConfigCommand, ConfigOutcome
from proffer_stream.offers.models import CommandOutcome, OfferEvent, OfferRequestsRecord
from proffer_stream.signals.models import CustomerSignals

Mode = Literal["validation", "serialization"]


def _default_topics() -> Topics:
    """Topic names with the default prefix and worker id (the files are not per deployment)."""
    fields = Settings.model_fields
    return topics(fields["topic_prefix"].default, fields["worker_id"].default)


def messages() -> dict[str, tuple[type[BaseModel], str, Mode]]:
    """File name -> (model, topic it travels on, whether producers write it or we do)."""
    names = _default_topics()
    return {
        "proffer.events.v1.json": (EventBatch, names.events.name, "validation"),
        "proffer.deadletter.v1.json": (DeadLetter, names.deadletter.name, "serialization"),
        "signals-changelog.v1.json": (
            CustomerSignals,
            names.signals_changelog.name,
            "serialization",
        ),
        "proffer.offer-requests.v1.json": (
            OfferRequestsRecord,
            names.offer_requests.name,
            "validation",
        ),
        "proffer.offers.v1.json": (OfferEvent, names.offers.name, "serialization"),
        "proffer.offer-command-outcomes.v1.json": (
            CommandOutcome,
            names.offer_outcomes.name,
            "serialization",
        ),
        "proffer.tenant-config.v1.json": (
            ConfigChange,
            names.tenant_config.name,
            "serialization",
        ),
        "proffer.tenant-config-commands.v1.json": (
            ConfigCommand,
            names.tenant_config_commands.name,
            "serialization",
        ),
        "proffer.tenant-config-outcomes.v1.json": (
            ConfigOutcome,
            names.tenant_config_outcomes.name,
            "serialization",
        ),
        "proffer.catalog.v1.json": (CatalogRecord, names.catalog.name, "serialization"),
        "proffer.catalog-commands.v1.json": (
            CatalogCommandRecord,
            names.catalog_commands.name,
            "validation",
        ),
        "proffer.catalog-events.v1.json": (
            CatalogEvent,
            names.catalog_events.name,
            "serialization",
        ),
        "proffer.decisions.v1.json": (DecisionRecord, names.decisions.name, "serialization"),
    }


def render() -> dict[str, str]:
    """Each schema file's expected text."""
    files = {}
    for name, (model, topic, mode) in messages().items():
        schema = model.model_json_schema(mode=mode)
        schema = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": name,
            "x-topic": topic,
            **schema,
        }
        files[name] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return files


def write(directory: Path) -> list[str]:
    """Write every schema into ``directory``; return the files that changed."""
    directory.mkdir(parents=True, exist_ok=True)
    changed = []
    for name, text in render().items():
        path = directory / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            changed.append(name)
    return changed


def drifted(directory: Path) -> list[str]:
    """The schema files that are missing or differ from the models."""
    return [
        name
        for name, text in render().items()
        if not (directory / name).exists() or (directory / name).read_text() != text
    ]
