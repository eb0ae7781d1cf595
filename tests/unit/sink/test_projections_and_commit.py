"""The sink's pure parts: the staging rows of event records, and which offsets it commits."""

import json
from datetime import UTC, datetime

import pytest
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError

from proffer_stream.core.errors import BadRecord
from proffer_stream.core.identity import customer_id
from proffer_stream.ingest.records import RecordLimits, read_event_record
from proffer_stream.signals.fold import new_signals
from proffer_stream.signals.models import CustomerColumns, CustomerSignals
from proffer_stream.sink.consumer import _commit
from proffer_stream.sink.projections import (
    CustomersProjection,
    Snapshot,
    latest_of_each_key,
    staged_events,
)

pytestmark = pytest.mark.unit

LIMITS = RecordLimits(max_bytes=1_048_576, max_events=1000)

RECEIVED = datetime(2026, 3, 17, 12, 0, tzinfo=UTC)


def record(offset: int, key: bytes, value: bytes | None, topic: str = "proffer.events"):
    return ConsumerRecord(topic, 2, offset, 1_700_000_000_000, 0, key, value, None, 0, 0, ())


def events_value(external: str, events: list[dict]) -> bytes:
    return json.dumps(
        {"tenant_id": "acme", "customer": {"id": external}, "events": events}
    ).encode()


def test_staged_rows_are_the_events_as_read_with_the_customers_internal_id():
    records = [
        record(7, b"acme:u1", events_value("u1", [{"type": "click"}, {"id": "e2", "type": "x"}])),
        record(8, b"acme:u2", events_value("u2", [{"type": "purchase", "data": {"amount": 5}}])),
        record(9, b"acme:u1", events_value("u1", [{"type": "click", "data": {"n": [1]}}])),
    ]
    expected = []
    for r in records:
        read = read_event_record(
            r.key,
            r.value,
            partition=r.partition,
            offset=r.offset,
            timestamp_ms=r.timestamp,
            limits=LIMITS,
        )
        for event in read.events:
            expected.append(
                (
                    "acme",
                    customer_id(*read.customer_key),
                    event.id,
                    event.type,
                    json.dumps(event.data, separators=(",", ":")),
                    event.occurred_at,
                    event.received_at,
                )
            )
    rows = staged_events(records, LIMITS)
    assert rows == expected
    assert [row[2] for row in rows] == [
        "k1700000000000-2-7-0",
        "e2",
        "k1700000000000-2-8-0",
        "k1700000000000-2-9-0",
    ]


def test_records_that_do_not_validate_give_no_rows():
    good = record(1, b"acme:u1", events_value("u1", [{"type": "click"}]))
    records = [
        record(0, b"acme:u1", b"{not json"),
        record(2, b"acme:u1", None),
        record(3, b"acme:someone-else", events_value("u1", [{"type": "click"}])),
        good,
        record(4, b"acme:u1", events_value("u1", [{"type": "has space"}])),
    ]
    assert staged_events(records, LIMITS) == staged_events([good], LIMITS)
    assert len(staged_events([good], LIMITS)) == 1


def test_the_customers_projection_reads_snapshots_and_skips_tombstones():
    projection = CustomersProjection("changelog")
    snapshot = new_signals("acme", "u1")
    value = snapshot.model_dump_json().encode()
    read = projection.read(
        [record(0, b"acme:u1", value, "changelog"), record(1, b"acme:u1", None, "changelog")]
    )
    assert read == [Snapshot(CustomerColumns(**snapshot.model_dump()), value.decode())]
    with pytest.raises(BadRecord):
        projection.read([record(2, b"acme:u1", b'{"tenant_id": 1}', "changelog")])


def test_of_a_batch_of_snapshots_only_the_last_of_each_key_with_a_value_is_read():
    assert CustomersProjection.latest_per_key
    records = [
        record(0, b"acme:u1", b"u1 first", "changelog"),
        record(1, b"acme:u2", b"u2 only", "changelog"),
        record(2, b"acme:u1", b"u1 last", "changelog"),
        record(3, b"acme:u1", None, "changelog"),
    ]
    assert [r.value for r in latest_of_each_key(records)] == [b"u1 last", b"u2 only"]


class FakeConsumer:
    def __init__(self, assigned: set[TopicPartition], fail: bool = False) -> None:
        self.assigned = assigned
        self.fail = fail
        self.committed: list[dict[TopicPartition, int]] = []

    def assignment(self) -> set[TopicPartition]:
        return self.assigned

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        if self.fail:
            raise CommitFailedError("rebalanced")
        self.committed.append(offsets)


A, B = TopicPartition("proffer.events", 0), TopicPartition("proffer.events", 1)


async def test_a_batch_commits_its_own_offsets_of_the_partitions_still_held():
    consumer = FakeConsumer({A})
    await _commit(consumer, {A: 10, B: 4})  # type: ignore[arg-type]
    assert consumer.committed == [{A: 10}]


async def test_nothing_is_committed_when_no_partition_is_held_or_the_group_rebalanced():
    consumer = FakeConsumer(set())
    await _commit(consumer, {A: 10})  # type: ignore[arg-type]
    assert consumer.committed == []
    await _commit(FakeConsumer({A}, fail=True), {A: 10})  # type: ignore[arg-type]


def test_the_customers_columns_are_fields_of_the_profile_typed_alike():
    for name, field in CustomerColumns.model_fields.items():
        profile_field = CustomerSignals.model_fields[name]
        assert (profile_field.annotation, profile_field.metadata) == (
            field.annotation,
            field.metadata,
        ), name
