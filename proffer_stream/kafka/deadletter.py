"""The dead-letter topic's message, and how one is made from a record we gave up on."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field

from proffer_stream.core.errors import BadRecord, DeadLetterReason
from proffer_stream.core.types import UtcDatetime

KEPT_BYTES = 65_536
"""Most bytes of the original key or value a dead letter carries (a record may be 1 MB)."""


class DeadLetter(BaseModel):
    """Value of a ``proffer.deadletter`` message: what could not be processed, and why."""

    schema_version: Literal[1] = 1
    reason: DeadLetterReason
    error: str = Field(description="What was wrong, and where.")
    stage: str = Field(description="The component that gave up on the message.")
    source_topic: str
    partition: int
    offset: int
    timestamp_ms: int | None = None
    key_b64: str | None = Field(None, description="The original key, base64.")
    value_b64: str = Field(
        description=f"The original value bytes, base64 (the first {KEPT_BYTES} when larger)."
    )
    value_size: int = Field(0, description="Size of the original value in bytes.")
    truncated: bool = Field(False, description="Whether key_b64 or value_b64 is a prefix.")
    failed_at: UtcDatetime


@dataclass(frozen=True)
class SourceRecord:
    """Where a record came from and what it held, as any consumer sees it."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes | None


def dead_letter(error: BadRecord, *, stage: str, record: SourceRecord) -> DeadLetter:
    """The dead-letter message for a record that could not be processed."""
    return DeadLetter(
        reason=error.reason,
        error=error.error,
        stage=stage,
        source_topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        timestamp_ms=record.timestamp_ms,
        key_b64=_b64(record.key) if record.key is not None else None,
        value_b64=_b64(record.value or b""),
        value_size=len(record.value or b""),
        truncated=max(len(record.key or b""), len(record.value or b"")) > KEPT_BYTES,
        failed_at=datetime.now(UTC),
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data[:KEPT_BYTES]).decode()
