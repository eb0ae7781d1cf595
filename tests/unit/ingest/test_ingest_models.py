"""Input models: what the webhook and the topic accept, and how they say no."""

from datetime import UTC

import pytest
from pydantic import ValidationError

from proffer_stream.core.identity import customer_id, partition_key
from proffer_stream.ingest.models import EventBatch, WebhookEventsRequest
from proffer_stream.ingest.records import normalized_events

pytestmark = pytest.mark.unit


def test_reference_body_is_accepted():
    body = {
        "customer": {
            "id": "user_12345",
            "email": "sarah@example.com",
            "name": "Sarah Chen",
            "metadata": {"plan": "free", "signup_source": "google_ads"},
        },
        "events": [
            {
                "type": "page_view",
                "data": {"page": "/pricing", "duration_seconds": 45},
                "occurred_at": "2026-03-17T10:00:00Z",
            },
            {"type": "purchase", "data": {"amount": 29.99, "product": "starter_plan"}},
            {"type": "click", "data": {"element": "upgrade_button", "page": "/pricing"}},
            {"type": "any_custom_type", "data": {"whatever": [1, 2]}},
        ],
    }
    parsed = WebhookEventsRequest.model_validate(body)
    assert parsed.events[0].occurred_at.tzinfo is UTC


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"type": "purchase", "data": {"amount": "lots"}}, "data.amount"),
        ({"type": "cart_abandon", "data": {"total": -1}}, "data.total"),
        ({"type": "feature_use", "data": {"times_used": 1.5}}, "data.times_used"),
        ({"data": {}}, "type"),
        ({"type": "has space"}, "type"),
        ({"type": "click", "occured_at": "2026-01-01"}, "occured_at"),
        ({"type": "click", "data": "not an object"}, "data"),
    ],
)
def test_bad_events_name_the_field(event, expected):
    with pytest.raises(ValidationError) as caught:
        WebhookEventsRequest.model_validate({"customer": {"id": "u"}, "events": [event]})
    text = str(caught.value)
    assert expected in text


def test_customer_id_is_required_and_numbers_are_accepted():
    with pytest.raises(ValidationError, match=r"customer\.id"):
        WebhookEventsRequest.model_validate({"customer": {}, "events": [{"type": "x"}]})
    parsed = WebhookEventsRequest.model_validate(
        {"customer": {"id": 42}, "events": [{"type": "x"}]}
    )
    assert parsed.customer.id == "42"


def test_naive_times_are_read_as_utc():
    parsed = WebhookEventsRequest.model_validate(
        {"customer": {"id": "u"}, "events": [{"type": "x", "occurred_at": "2026-03-17T10:00:00"}]}
    )
    assert parsed.events[0].occurred_at.tzinfo is UTC


def test_internal_customer_ids_are_stable_53_bit_and_tenant_scoped():
    first = customer_id("acme", "user_1")
    assert first == customer_id("acme", "user_1")
    assert 0 < first < 2**53
    assert first != customer_id("other", "user_1")
    assert partition_key("acme", "user_1") == b"acme:user_1"


def test_records_without_ids_get_the_same_ids_on_every_replay():
    batch = EventBatch(
        tenant_id="acme", customer={"id": "u"}, events=[{"type": "a"}, {"type": "b"}]
    )
    first = normalized_events(batch, partition=2, offset=7, timestamp_ms=1_700_000_000_000)
    again = normalized_events(batch, partition=2, offset=7, timestamp_ms=1_700_000_000_000)
    assert [e.id for e in first] == [e.id for e in again]
    assert len({e.id for e in first}) == 2
    assert first[0].occurred_at == first[0].received_at
