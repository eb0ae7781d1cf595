"""The gateway against its own OpenAPI spec: schemathesis fuzzes every documented operation.

In-process (ASGI, no server) and authenticated, against the real broker and PostgreSQL.
No answer may be a server error, and each answer's status code, content type, headers and
body must be ones the spec documents. Positive cases fit the spec and negative ones do not;
both kinds are tried for every operation that takes input.

Hypothesis runs in a worker thread (its tests are synchronous); each request is sent on the
test's event loop, where the app's lifespan holds the PostgreSQL pool and the Kafka producer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, example, given
from hypothesis import settings as hypothesis_settings
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS as REGISTERED_CHECKS
from schemathesis.checks import load_all_checks, not_a_server_error
from schemathesis.config import SchemathesisConfig
from support import isolated_settings

from proffer_stream.api.app import create_app
from proffer_stream.db import keys
from proffer_stream.db.pool import connect_pool

pytestmark = pytest.mark.integration

BASE_URL = "http://gateway"
POSITIVE, NEGATIVE = GenerationMode.POSITIVE, GenerationMode.NEGATIVE

# Every documented operation.
OPERATIONS = [
    ("POST", "/api/webhook/events"),
    ("GET", "/api/customers"),
    ("GET", "/api/customers/external/{external_id}"),
    ("GET", "/api/customers/{customer_id}"),
    ("GET", "/api/customers/{customer_id}/events"),
    ("GET", "/api/customers/{customer_id}/decisions"),
    ("POST", "/api/offers/generate"),
    ("GET", "/api/offers/requests/{request_id}"),
    ("POST", "/api/offers/generate-batch"),
    ("GET", "/api/offers"),
    ("GET", "/api/offers/{offer_id}"),
    ("GET", "/api/offers/{offer_id}/trace"),
    ("PATCH", "/api/offers/{offer_id}"),
    ("GET", "/api/offers/{offer_id}/events"),
    ("GET", "/api/offers/commands/{command_id}"),
    ("GET", "/api/stats"),
    ("GET", "/api/rules"),
    ("PUT", "/api/rules"),
    ("GET", "/api/policy"),
    ("PUT", "/api/policy"),
    ("GET", "/api/config/commands/{command_id}"),
    ("POST", "/api/keys"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("POST", "/api/catalog/offers"),
    ("GET", "/api/catalog/offers"),
    ("GET", "/api/catalog/offers/{offer_id}"),
    ("PATCH", "/api/catalog/offers/{offer_id}"),
    ("DELETE", "/api/catalog/offers/{offer_id}"),
    ("POST", "/api/catalog/collections"),
    ("GET", "/api/catalog/collections"),
    ("GET", "/api/catalog/collections/{collection_id}"),
    ("PATCH", "/api/catalog/collections/{collection_id}"),
    ("DELETE", "/api/catalog/collections/{collection_id}"),
    ("GET", "/api/catalog/commands/{command_id}"),
    ("GET", "/api/catalog/preview/members/{external_customer_id}/offers"),
    ("GET", "/api/catalog/preview/members/{external_customer_id}/offers/meta"),
    ("GET", "/api/catalog/preview/members/{external_customer_id}/offers/{offer_id}"),
    ("GET", "/api/members/{external_customer_id}/offers"),
    ("GET", "/api/members/{external_customer_id}/offers/meta"),
    ("GET", "/api/members/{external_customer_id}/offers/{offer_id}"),
    ("POST", "/api/members/{external_customer_id}/offers/{offer_id}/grant"),
    ("POST", "/api/members/{external_customer_id}/offers/{offer_id}/use"),
    ("POST", "/api/members/{external_customer_id}/offers/{offer_id}/like"),
    ("DELETE", "/api/members/{external_customer_id}/offers/{offer_id}/like"),
    ("POST", "/api/members/{external_customer_id}/offers/{offer_id}/events/seen"),
    ("POST", "/api/members/{external_customer_id}/offers/{offer_id}/events/clicked"),
    ("POST", "/api/members/{external_customer_id}/offers/{offer_id}/encode"),
    ("POST", "/api/catalog/encoded/use"),
    ("POST", "/api/v2/personalized_offers"),
    ("POST", "/api/v2/offer_events"),
    ("POST", "/api/v2/offer_fulfillments"),
    ("GET", "/api/v2/offer_fulfillments/{fulfillment_id}"),
    ("POST", "/api/v2/offer_fulfillments/{fulfillment_id}"),
    ("GET", "/api/decisions/{decision_id}"),
    ("POST", "/api/v2/integrations/{integration_id}/flows"),
    ("POST", "/api/v2/integrations/{integration_id}/flows/{flow_id}/offers"),
    (
        "POST",
        "/api/v2/integrations/{integration_id}/flows/{flow_id}/offers/{decision_id}/{reaction}",
    ),
    ("POST", "/api/integrations"),
    ("GET", "/api/integrations"),
    ("GET", "/api/integrations/{integration_id}"),
    ("PATCH", "/api/integrations/{integration_id}"),
    ("DELETE", "/api/integrations/{integration_id}"),
]
# No invalid input exists for these (no parameters, no body), or schemathesis cannot make
# one (an external id is any non-empty string without NUL, and a path segment is a string).
NO_NEGATIVE_CASES = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/api/rules"),
    ("GET", "/api/policy"),
    ("GET", "/api/customers/external/{external_id}"),
    ("GET", "/api/members/{external_customer_id}/offers/meta"),
    ("GET", "/api/catalog/preview/members/{external_customer_id}/offers/meta"),
    # schemathesis 4 finds no negative case here in the app's spec (Unsatisfiable: every
    # case it makes fails its own filter), though it does for the same body alone; the
    # 422s naming each field are tested in tests/e2e/test_decisions.py.
    ("POST", "/api/v2/personalized_offers"),
    ("POST", "/api/v2/offer_events"),
}

# Readiness answers 503 while the worker and the sink have not joined (none runs here): a
# documented answer, not a server error.
NOT_READY_IS_503 = {("GET", "/readyz")}

# Refusals of positive cases (input the spec's schemas allow) for rules JSON Schema cannot
# state, each documented on its operation: positive_data_acceptance expects these too.
SEMANTIC_REFUSALS: dict[tuple[str, str], tuple[list[str], str]] = {
    ("POST", "/api/webhook/events"): (
        ["422"],
        "event times within 1970-2100; numbers in free-form data finite and at most 1e15",
    ),
    ("GET", "/api/stats"): (["422"], "invalid_window: from after to (two parameters)"),
    ("PUT", "/api/rules"): (["422"], "rule ids unique across the set (a key of the items)"),
    ("PUT", "/api/policy"): (["422"], "min_valid_days <= max_valid_days (two fields)"),
    ("POST", "/api/catalog/offers"): (["422"], "times within 1970-2100; windows end after start"),
    ("PATCH", "/api/catalog/offers/{offer_id}"): (["422"], "as POST /api/catalog/offers"),
    ("POST", "/api/catalog/encoded/use"): (["400"], "bad_token: a token is ours only if signed"),
    ("POST", "/api/v2/personalized_offers"): (
        ["422"],
        "numbers in custom finite and at most 1e15 (free-form data, as events')",
    ),
}
POSITIVE_STATUSES = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]  # schemathesis'


def fuzz_config(method: str, path: str) -> SchemathesisConfig:
    """Schemathesis' configuration for one operation: no NUL in generated strings (the
    spec says so of every named string; free-form data and metadata refuse it too, as
    PostgreSQL cannot store it), and the operation's semantic refusals."""
    extra, _ = SEMANTIC_REFUSALS.get((method, path), ([], ""))
    return SchemathesisConfig.from_dict(
        {
            "generation": {"allow-x00": False},
            "checks": {
                "positive_data_acceptance": {"expected-statuses": POSITIVE_STATUSES + extra}
            },
        }
    )


load_all_checks()
CHECKS = REGISTERED_CHECKS.get_all()
"""Every check schemathesis has (14 in 4.32): conformance of status, content type, headers
and body; positive data accepted and negative data rejected; methods, auth, resources."""

# Bounded so that the module takes about a minute on two cores (every check, 119 cases, one
# gateway for all: 1.5 min at 50 examples); derandomized so that a failure is reproduced by
# rerunning.
FUZZ = hypothesis_settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=False,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
)

# Inputs that found bugs, tried on every run before the generated ones.
EXAMPLES: dict[tuple[str, str, GenerationMode], list[dict[str, Any]]] = {
    # A key name with NUL: PostgreSQL text cannot hold it; was answered 500.
    ("POST", "/api/keys", POSITIVE): [
        {"body": {"name": "\x00"}, "media_type": "application/json"},
    ],
    # A body that is not UTF-8: answered 400, which the spec did not document.
    ("POST", "/api/keys", NEGATIVE): [
        {"body": b"\xff", "media_type": "application/json"},
    ],
}


def _params() -> list[Any]:
    return [
        pytest.param(method, path, mode, id=f"{method} {path} {mode.value}")
        for method, path in OPERATIONS
        for mode in (POSITIVE, NEGATIVE)
        if mode is POSITIVE or (method, path) not in NO_NEGATIVE_CASES
    ]


def _request_kwargs(case: schemathesis.Case, key: str) -> dict[str, Any]:
    """The case as arguments of ``httpx.AsyncClient.request``, with the API key."""
    sent = case.as_transport_kwargs(base_url=BASE_URL, headers={"Authorization": f"Bearer {key}"})
    kwargs: dict[str, Any] = {
        "method": sent["method"],
        "url": sent["url"],
        "headers": dict(sent.get("headers") or {}),
        "params": sent.get("params") or None,
    }
    if "json" in sent:
        kwargs["json"] = sent["json"]
    elif sent.get("data") is not None:
        data = sent["data"]
        kwargs["content" if isinstance(data, bytes | str) else "data"] = data
    if sent.get("cookies"):
        kwargs["headers"]["Cookie"] = "; ".join(f"{k}={v}" for k, v in sent["cookies"].items())
    return kwargs


def _fuzz(
    operation: Any,
    mode: GenerationMode,
    send: Callable[[schemathesis.Case], httpx.Response],
) -> None:
    """Run the cases; raise on the first answer that breaks the spec."""

    def conforms(case: schemathesis.Case) -> None:
        checks = CHECKS
        if (operation.method.upper(), operation.path) in NOT_READY_IS_503:
            checks = [check for check in CHECKS if check is not not_a_server_error]
        case.validate_response(send(case), checks=checks)

    test = given(case=operation.as_strategy(generation_mode=mode))(conforms)
    for kwargs in EXAMPLES.get((operation.method.upper(), operation.path, mode), []):
        test = example(case=operation.Case(**kwargs))(test)
    FUZZ(test)()


def test_every_operation_is_fuzzed_with_every_check(settings):
    spec = create_app(settings).openapi()
    documented = {(method.upper(), path) for path, item in spec["paths"].items() for method in item}
    assert documented == set(OPERATIONS)
    assert len(CHECKS) >= 14


@pytest.fixture(scope="module")
async def gateway(kafka_bootstrap, postgres_url, tmp_path_factory):
    """One gateway for every case of the module (starting one per case was most of its
    time): its API key, and a function that sends a case and waits for the answer."""
    own = await isolated_settings(kafka_bootstrap, postgres_url, tmp_path_factory.mktemp("fuzz"))
    pool = await connect_pool(own.database_url, max_size=1)
    try:
        key = (await keys.create_key(pool, "acme", "fuzz")).key
    finally:
        await pool.close()
    # No worker runs here: a command the API waits for answers 202 at once.
    app = create_app(own.model_copy(update={"offer_wait_seconds": 0.0}))
    loop = asyncio.get_running_loop()
    async with app.router.lifespan_context(app):
        # A crash must come back as the 500 a client would see, not as an exception.
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:

            def send(case: schemathesis.Case) -> httpx.Response:
                request = client.request(**_request_kwargs(case, key))
                return asyncio.run_coroutine_threadsafe(request, loop).result(timeout=30)

            yield app, send


@pytest.mark.parametrize(("method", "path", "mode"), _params())
async def test_the_gateway_answers_as_its_spec_says(gateway, method, path, mode):
    app, send = gateway
    schema = schemathesis.openapi.from_dict(app.openapi(), config=fuzz_config(method, path))
    operation = schema[path][method]
    await asyncio.to_thread(_fuzz, operation, mode, send)
