"""JSON Schemas of the topic messages, generated from the pydantic models into schemas/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from proffer_stream.models import CustomerSignals, DeadLetter, EventBatch

Mode = Literal["validation", "serialization"]

# file name -> (model, topic it travels on, whether producers write it or consumers read it)
TOPIC_MESSAGES: dict[str, tuple[type[BaseModel], str, Mode]] = {
    "proffer.events.v1.json": (EventBatch, "proffer.events", "validation"),
    "proffer.deadletter.v1.json": (DeadLetter, "proffer.deadletter", "serialization"),
    "signals-changelog.v1.json": (
        CustomerSignals,
        "proffer-worker-signals-changelog",
        "serialization",
    ),
}


def render() -> dict[str, str]:
    """Each schema file's expected text."""
    files = {}
    for name, (model, topic, mode) in TOPIC_MESSAGES.items():
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
