"""Reading a proffer.events record: valid, invalid JSON, invalid message, wrong key."""

import json

import pytest

from proffer_stream.core.errors import BadRecord
from proffer_stream.ingest.records import (
    RecordLimits,
    describe_errors,
    error_location,
    read_event_record,
)

pytestmark = pytest.mark.unit


def value(**changes):
    body = {"tenant_id": "acme", "customer": {"id": "u1"}, "events": [{"type": "click"}]}
    return json.dumps({**body, **changes}).encode()


LIMITS = RecordLimits(max_bytes=2000, max_events=3)


def read(key, raw, offset=5):
    return read_event_record(
        key, raw, partition=1, offset=offset, timestamp_ms=1_700_000_000_000, limits=LIMITS
    )


def test_a_valid_record_is_read_with_its_position_and_settled_events():
    record = read(b"acme:u1", value())
    assert record.customer_key == ("acme", "u1")
    assert (record.partition, record.offset) == (1, 5)
    assert record.events[0].id == "k1700000000000-1-5-0"
    assert record.events[0].occurred_at == record.events[0].received_at


@pytest.mark.parametrize(
    ("key", "raw", "reason", "where"),
    [
        (b"acme:u1", b"{not json", "invalid_json", ""),
        (b"acme:u1", None, "invalid_json", ""),
        (b"acme:u1", value(events=[]), "invalid_message", "events"),
        (b"acme:u1", value(events=[{"type": "has space"}]), "invalid_message", "events[0].type"),
        (b"acme:u1", value(tenant_id="ACME"), "invalid_message", "tenant_id"),
        (b"acme:u2", value(), "wrong_key", "acme:u1"),
        (None, value(), "wrong_key", "acme:u1"),
    ],
)
def test_bad_records_say_why_and_where(key, raw, reason, where):
    with pytest.raises(BadRecord) as caught:
        read(key, raw)
    assert caught.value.reason == reason
    assert where in caught.value.error


def test_error_locations_read_like_the_input():
    assert error_location(("events", 1, "data", "amount")) == "events[1].data.amount"
    assert error_location(("customer", "id")) == "customer.id"
    assert error_location(()) == "(body)"
    errors = [{"loc": ("events", 0, "type"), "msg": "Field required"}]
    assert describe_errors(errors) == "events[0].type: Field required"


def test_a_record_over_the_gateway_s_size_is_too_large_before_it_is_parsed():
    with pytest.raises(BadRecord) as raised:
        read(b"acme:u1", b"{" + b" " * 2000)
    assert raised.value.reason == "too_large"
    assert "2001 bytes; at most 2000" in raised.value.error


def test_a_record_with_more_events_than_a_request_may_carry_is_refused():
    with pytest.raises(BadRecord) as raised:
        read(b"acme:u1", value(events=[{"type": "click"}] * 4))
    assert raised.value.reason == "too_many_events"
    assert raised.value.error.startswith("events: 4 events in one record; at most 3")
    assert read(b"acme:u1", value(events=[{"type": "click"}] * 3)).events
