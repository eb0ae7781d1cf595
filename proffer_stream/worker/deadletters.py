"""Sending what an agent cannot apply to ``proffer.deadletter``, with its reason."""

from __future__ import annotations

import logging

import faust
from faust.types import Message

from proffer_stream.core import metrics
from proffer_stream.core.errors import BadRecord
from proffer_stream.kafka.deadletter import SourceRecord, dead_letter

log = logging.getLogger(__name__)


def source_record(message: Message) -> SourceRecord:
    """The position and bytes of a Kafka record as Faust's consumer read it."""
    return SourceRecord(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        timestamp_ms=round((message.timestamp or 0) * 1000),
        key=message.key,
        value=message.value,
    )


class DeadLetters:
    """Dead-letters records for one agent (its ``stage``)."""

    def __init__(self, topic: faust.TopicT, stage: str) -> None:
        self.topic = topic
        self.stage = stage

    async def send(self, record: SourceRecord, error: BadRecord) -> None:
        """Queue the dead letter; Faust flushes the producer before it commits the offset."""
        letter = dead_letter(error, stage=self.stage, record=record)
        log.warning(
            "dead-lettered %s[%d]@%d: %s", record.topic, record.partition, record.offset, error
        )
        await self.topic.send(key=record.key, value=letter.model_dump_json().encode())
        metrics.DEAD_LETTERS.labels(self.stage, error.reason).inc()
