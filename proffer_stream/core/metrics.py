"""Prometheus metrics of every process; the gateway serves them at /metrics."""

from __future__ import annotations

import logging

from prometheus_client import Counter, Histogram, start_http_server

log = logging.getLogger(__name__)

HTTP_REQUESTS = Counter(
    "proffer_http_requests_total", "HTTP requests answered.", ["method", "route", "status"]
)
HTTP_SECONDS = Histogram(
    "proffer_http_request_seconds", "HTTP request latency.", ["method", "route"]
)
EVENTS_ACCEPTED = Counter(
    "proffer_gateway_events_accepted_total", "Events accepted by the gateway.", ["tenant"]
)
RECORDS_PROCESSED = Counter(
    "proffer_signals_records_total", "proffer.events records processed by the signals agent."
)
EVENTS_COUNTED = Counter(
    "proffer_signals_events_counted_total", "Events folded into customer signals."
)
EVENTS_NOT_COUNTED = Counter(
    "proffer_signals_events_not_counted_total",
    "Events seen again (replayed record or re-sent event id) and not counted twice.",
)
RECORDS_REROUTED = Counter(
    "proffer_signals_records_rerouted_total",
    "proffer.events records found on a partition their key does not hash to, and moved.",
)
DEAD_LETTERS = Counter(
    "proffer_deadletter_total", "Records sent to the dead-letter topic.", ["stage", "reason"]
)
OFFER_REQUESTS = Counter(
    "proffer_offer_requests_total", "Offer requests made by trigger rules.", ["rule"]
)
OFFER_DECISIONS = Counter(
    "proffer_offer_decisions_total", "Offer requests decided, by outcome.", ["outcome"]
)
OFFER_COMMANDS = Counter(
    "proffer_offer_commands_total",
    "Commands asked of the offers agent by customers' events (seen, clicked, redeem).",
    ["action"],
)
OFFER_CHANGES = Counter(
    "proffer_offer_changes_total",
    "Offer lifecycle events published by the offers agent, by type.",
    ["type"],
)
OFFER_EXPIRIES_DUE = Counter(
    "proffer_offer_expiries_due_total", "Expiry commands sent by the offers' expiry timers."
)
CATALOG_EVENTS = Counter(
    "proffer_catalog_events_total",
    "Catalog owners' decisions, by kind and refusal reason.",
    ["kind", "reason"],
)
SINK_ROWS = Counter("proffer_sink_rows_total", "Rows written by the sink.", ["table"])
SINK_BATCH_SECONDS = Histogram(
    "proffer_sink_batch_seconds", "Time to write one batch to PostgreSQL."
)


def serve_metrics(port: int, host: str = "127.0.0.1") -> None:
    """Serve /metrics on ``host:port`` in a background thread (no-op when port is 0)."""
    if port:
        start_http_server(port, addr=host)
        log.info("metrics at http://%s:%d/metrics", host, port)
