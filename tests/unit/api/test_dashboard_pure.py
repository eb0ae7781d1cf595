"""The dashboard's pure parts: the session cookie, form parsing, chart data shaping."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proffer_stream.api.dashboard import charts, forms
from proffer_stream.api.dashboard.cache import TtlCache
from proffer_stream.api.dashboard.pulse import Pulse, Rates, read_keys
from proffer_stream.api.dashboard.session import (
    MAX_AGE_SECONDS,
    csrf_valid,
    new_session,
    seal,
    session_secret,
    unseal,
)
from proffer_stream.api.models import RulesUpdate
from proffer_stream.db.dashboard import QueueFilter
from proffer_stream.db.replies import events_key, feed_key

pytestmark = pytest.mark.unit

SECRET = session_secret(b"signing key")
NOW = 1_800_000_000.0


# --- the session


def test_a_sealed_session_reads_back_until_it_is_too_old():
    session = new_session("hash", NOW)
    cookie = seal(session, SECRET)
    assert unseal(cookie, SECRET, NOW + 10) == session
    assert unseal(cookie, SECRET, NOW + MAX_AGE_SECONDS) is None
    assert unseal(cookie, SECRET, NOW - 10) is None  # issued in the future


def test_a_forged_or_mangled_cookie_is_no_session():
    cookie = seal(new_session("hash", NOW), SECRET)
    payload, _, mac = cookie.partition(".")
    assert unseal(cookie, session_secret(b"another key"), NOW) is None
    forged = seal(new_session("someone else's", NOW), session_secret(b"x")).split(".")[0]
    assert unseal(f"{forged}.{mac}", SECRET, NOW) is None
    for bad in ("", ".", "abc", f"{payload}.", f".{mac}", f"{payload}.{mac}x", "é.é"):
        assert unseal(bad, SECRET, NOW) is None


@given(st.text(max_size=200))
def test_no_cookie_value_raises(value):
    assert unseal(value, SECRET, NOW) is None


def test_csrf_tokens_are_per_session():
    first, second = new_session("hash", NOW), new_session("hash", NOW)
    assert first.csrf != second.csrf
    assert csrf_valid(first, first.csrf)
    assert not csrf_valid(first, second.csrf)
    assert not csrf_valid(first, None)
    assert not csrf_valid(first, "")


# --- forms


def test_form_fields_keep_repeats_blanks_and_bad_bytes():
    fields = forms.form_fields(b"ids=1&ids=2&name=&csrf=a%2Bb&x=%FF")
    assert fields == {"ids": ["1", "2"], "name": [""], "csrf": ["a+b"], "x": ["\ufffd"]}
    assert forms.first(fields, "csrf") == "a+b"
    assert forms.first(fields, "missing") == ""


def test_offer_ids_keep_valid_ids_once_in_order():
    assert forms.offer_ids(["3", " 1 ", "3", "0", "-2", "x", "²", str(2**53), ""]) == [3, 1]
    assert len(forms.offer_ids([str(i) for i in range(1, 1000)])) == forms.MAX_IDS


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"act": ["approved:42"], "ids": ["7"]}, ("approved", [42])),
        ({"act": ["sent"], "ids": ["7", "8"]}, ("sent", [7, 8])),
        ({"act": ["expired"]}, ("expired", [])),
        ({"act": ["redeemed:42"]}, None),
        ({"act": ["approved:x"]}, ("approved", [])),
        ({}, None),
    ],
)
def test_the_button_pressed(fields, expected):
    assert forms.chosen_action(fields) == expected


def test_queue_filters_drop_what_they_do_not_know():
    assert forms.queue_filter({}) == QueueFilter()
    chosen = forms.queue_filter(
        {"status": "approved", "channel": "sms", "rule": " vip ", "customer": "ann"}
    )
    assert chosen == QueueFilter("approved", "sms", "vip", "ann")
    odd = forms.queue_filter(
        {"status": "nope", "channel": "fax", "rule": "x" * 201, "customer": "\x00"}
    )
    assert odd == QueueFilter()


def test_a_json_document_with_mistakes_names_each_field_as_the_api_does():
    document, errors = forms.parse_json_document(
        '{"rules": [{"id": "vip", "name": "VIP", "conditions": {}, "priority": "high"}]}',
        RulesUpdate,
    )
    assert document is None
    assert forms.errors_by_field(errors) == {
        "body.rules[0].priority": ['rule "vip": Input should be a valid integer']
    }


def test_a_document_that_is_not_json_says_where():
    document, errors = forms.parse_json_document('{"rules": [', RulesUpdate)
    assert document is None
    assert errors[0].loc == "document" and "line 1, column 12" in errors[0].message


def test_a_valid_document_is_the_model():
    document, errors = forms.parse_json_document('{"rules": []}', RulesUpdate)
    assert errors == [] and document == RulesUpdate(rules=[])


# --- charts

NOON = datetime(2026, 12, 7, 12, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("period", "days", "bucket", "bars"),
    [
        ("day", 1, timedelta(hours=1), 25),
        ("week", 7, timedelta(days=1), 8),
        ("month", 30, timedelta(days=1), 31),
    ],
)
def test_periods_and_their_bars(period, days, bucket, bars):
    span = charts.window(period, NOON)
    assert (span.until - span.since, span.bucket) == (timedelta(days=days), bucket)
    starts = charts.bucket_starts(span)
    assert len(starts) == bars
    assert starts[0] <= span.since < starts[0] + bucket and starts[-1] < span.until


def test_an_unknown_period_is_the_day():
    assert charts.period_or_day("year") == "day"
    assert charts.period_or_day(None) == "day"
    assert charts.period_or_day("week") == "week"


def test_time_series_fill_every_bar_and_ignore_strays():
    span = charts.window("day", NOON)
    first, last = charts.bucket_starts(span)[0], charts.bucket_starts(span)[-1]
    rows = [
        (first, "generated", 2.0),
        (last, "generated", 1.0),
        (last, "redeemed", 1.0),
        (last, "unknown", 9.0),
        (first - timedelta(hours=1), "generated", 9.0),
    ]
    data = charts.time_series(span, rows, ["generated", "redeemed"])
    assert len(data.labels) == 25 and data.labels[0] == "12:00"
    generated, redeemed = data.series
    assert (generated.values[0], generated.values[-1], sum(generated.values)) == (2.0, 1.0, 3.0)
    assert sum(redeemed.values) == 1.0
    assert data.as_json()["datasets"][0]["label"] == "generated"


def test_daily_bars_are_labelled_by_date():
    data = charts.time_series(charts.window("week", NOON), [], ["generated"])
    assert data.labels[0] == "Nov 30" and data.labels[-1] == "Dec 07"


def test_counts_and_rates():
    chart = charts.counts_chart("offers", {"email": 2, "sms": 0})
    assert chart.as_json() == {
        "labels": ["email", "sms"],
        "datasets": [{"label": "offers", "data": [2.0, 0.0]}],
    }
    assert charts.percent(None) == "—"
    assert charts.percent(0.12345) == "12.3%"


# --- the overview's cache


async def test_the_cache_computes_once_per_ttl_and_shares_a_computation():
    now = [0.0]
    cache: TtlCache[int] = TtlCache(10.0, max_keys=2, clock=lambda: now[0])
    calls: list[str] = []

    async def compute(key: str) -> int:
        calls.append(key)
        await asyncio.sleep(0)
        return len(calls)

    first = await asyncio.gather(*(cache.get("a", lambda: compute("a")) for _ in range(3)))
    assert first == [1, 1, 1] and calls == ["a"]
    now[0] = 9.9
    assert await cache.get("a", lambda: compute("a")) == 1
    now[0] = 10.0
    assert await cache.get("a", lambda: compute("a")) == 2
    await cache.get("b", lambda: compute("b"))
    await cache.get("c", lambda: compute("c"))  # over max_keys: "a" goes
    assert await cache.get("a", lambda: compute("a")) == 5


async def test_a_failed_computation_is_not_kept():
    cache: TtlCache[int] = TtlCache(10.0)

    async def broken() -> int:
        raise RuntimeError("database down")

    async def fine() -> int:
        return 1

    with pytest.raises(RuntimeError):
        await cache.get("a", broken)
    assert await cache.get("a", fine) == 1


# --- the live rates and feed, from what the sink notifies


def test_feed_and_event_keys_read_back_whatever_the_text():
    customer = 'ann\n"\t:x'
    keys = [
        feed_key("acme", "offer.generated", 42, "generated", customer, "rule r" * 100),
        feed_key("acme", "offer.suppressed", None, None, "bob", "rule r"),
        events_key("acme", 3),
        events_key("acme", 2),
        "o:42",
        "f:not json",
        "n:[1]",
    ]
    assert all("\n" not in key for key in keys)
    items, events = read_keys(keys)
    assert [(i.offer_id, i.external_customer_id) for i in items] == [(42, customer), (None, "bob")]
    assert len(items[0].cause) == 100
    assert events == {"acme": 5}


async def test_rates_over_the_last_ten_seconds_and_the_feed_per_tenant():
    pulse = Pulse()
    with pulse.subscribe("acme") as ours, pulse.subscribe("globex") as theirs:
        pulse.on_keys(
            [events_key("acme", 30), feed_key("acme", "offer.generated", 1, "generated", "a", "r")]
        )
        pulse.on_keys([feed_key("acme", "offer.approved", 1, "approved", "a", "k")])
        pulse.tick()
        assert pulse.rates("acme") == Rates(events_per_second=3.0, offers_per_second=0.1)
        got = [ours.get_nowait() for _ in range(2)]
        assert [(n, i.event_type) for n, i in got] == [
            (1, "offer.generated"),
            (2, "offer.approved"),
        ]
        assert theirs.empty()
    # A browser that reconnects after item 1 gets what came since; a new one all kept.
    with pulse.subscribe("acme", after=1) as again, pulse.subscribe("acme", after=0) as fresh:
        assert again.get_nowait()[0] == 2 and again.empty()
        assert fresh.qsize() == 2
    for _ in range(10):
        pulse.tick()
    assert pulse.rates("acme") == Rates(0.0, 0.0)
    assert pulse.rates("nobody") == Rates(0.0, 0.0)
