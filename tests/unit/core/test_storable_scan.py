"""The one-scan check of a raw message: where it passes, checking each value finds nothing."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from proffer_stream.core.limits import MAX_NESTING, scan_is_storable
from proffer_stream.ingest.models import WebhookEventsRequest, storable_context

pytestmark = pytest.mark.unit

AWKWARD_TEXT = st.sampled_from(["\x00", "a\x00b", "\ud800", "x\udfffy", "e2e", "2" * 16, "NaN"])
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
    | AWKWARD_TEXT
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=4) | AWKWARD_TEXT, inner, max_size=3)
    ),
    max_leaves=12,
)


def nested(depth: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(depth):
        value = {"n": value}
    return value


def body(data, metadata, ascii_only: bool) -> bytes:
    message = {
        "customer": {"id": "c1", "metadata": metadata},
        "events": [{"type": "purchase", "data": data}],
    }
    return json.dumps(message, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


def outcome(raw: bytes, context: dict | None):
    try:
        WebhookEventsRequest.model_validate_json(raw, context=context)
    except ValidationError as exc:
        return sorted((tuple(map(str, e["loc"])), e["type"], e["msg"]) for e in exc.errors())
    return "accepted"


@settings(max_examples=400)
@given(
    data=st.dictionaries(st.text(max_size=4) | AWKWARD_TEXT, VALUES, max_size=4),
    metadata=st.none() | st.dictionaries(st.text(max_size=4), VALUES, max_size=3),
    ascii_only=st.booleans(),
)
def test_a_message_is_judged_the_same_with_or_without_the_scan(data, metadata, ascii_only):
    raw = body(data, metadata, ascii_only)
    assert outcome(raw, storable_context(raw)) == outcome(raw, None)


@pytest.mark.parametrize("depth", range(MAX_NESTING - 3, MAX_NESTING + 3))
def test_deep_data_is_judged_the_same_with_or_without_the_scan(depth):
    raw = body(nested(depth), nested(depth), ascii_only=True)
    assert outcome(raw, storable_context(raw)) == outcome(raw, None)


def test_plain_events_pass_the_scan():
    raw = body({"amount": 12.5, "product": "Pro plan", "tags": ["a", {"b": 2}]}, None, True)
    assert scan_is_storable(raw)


@pytest.mark.parametrize(
    "value",
    ["\x00", "\ud800", 10**16, 1e16, float("nan"), float("inf"), "order 1234567890123456"],
)
def test_anything_that_might_not_be_storable_fails_the_scan(value):
    assert not scan_is_storable(body({"v": value}, None, ascii_only=True))
