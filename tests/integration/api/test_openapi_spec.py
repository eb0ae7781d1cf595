"""Issue 21, item 8: the spec says what the API does. operationIds named for people, one
schema per model, /metrics as the text it is, generate's one-of rule, and a 405 that
names in ``Allow`` every method the path takes."""

import re

import jsonschema_rs
import pytest
from pydantic import ValidationError
from test_gateway import auth, client_for

from proffer_stream.api.app import create_app
from proffer_stream.api.models import GenerateOffer
from proffer_stream.db import keys

pytestmark = pytest.mark.integration


@pytest.fixture
def spec(settings):
    return create_app(settings).openapi()


def operations(spec):
    return {
        (method.upper(), path): operation
        for path, item in spec["paths"].items()
        for method, operation in item.items()
    }


def test_operation_ids_are_unique_camel_case_names(spec):
    ids = {key: op["operationId"] for key, op in operations(spec).items()}
    assert len(set(ids.values())) == len(ids)
    assert all(re.fullmatch(r"[a-z]+(?:[A-Z][a-z]+)*", name) for name in ids.values()), ids
    assert ids[("POST", "/api/webhook/events")] == "ingestEvents"
    assert ids[("POST", "/api/offers/generate")] == "generateOffer"
    assert ids[("GET", "/api/offers")] == "listOffers"
    assert ids[("GET", "/api/rules")] == "getRules"
    assert ids[("PUT", "/api/rules")] == "setRules"
    assert ids[("GET", "/api/catalog/offers")] == "listCatalogOffers"
    assert ids[("GET", "/api/catalog/commands/{command_id}")] == "getCatalogCommand"


def test_a_model_has_one_schema_for_input_and_output(spec):
    names = list(spec["components"]["schemas"])
    assert not [name for name in names if name.endswith(("-Input", "-Output"))]
    assert {"TriggerRule", "RuleConditions", "CatalogTerms"} <= set(names)


def test_metrics_are_documented_and_answered_as_prometheus_text(spec):
    answer = spec["paths"]["/metrics"]["get"]["responses"]["200"]
    assert list(answer["content"]) == ["text/plain"]


async def test_metrics_answer_text(settings):
    async with client_for(settings) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")


BODIES = [
    ({"customer_id": 12}, True),
    ({"external_customer_id": "u1"}, True),
    ({"customer_id": 12, "external_customer_id": None}, True),
    ({"customer_id": None, "external_customer_id": "u1"}, True),
    ({"customer_id": 12, "external_customer_id": "u1"}, False),
    ({}, False),
    ({"customer_id": None, "external_customer_id": None}, False),
]


@pytest.mark.parametrize(("body", "accepted"), BODIES)
def test_generate_s_one_of_rule_is_in_the_spec(spec, body, accepted):
    schema = {**spec["components"]["schemas"]["GenerateOffer"], "components": spec["components"]}
    valid_by_spec = jsonschema_rs.validator_for(schema).is_valid(body)
    try:
        GenerateOffer.model_validate(body)
        valid_by_model = True
    except ValidationError:
        valid_by_model = False
    assert valid_by_spec == valid_by_model == accepted


def test_numeric_ranges_are_in_the_spec(spec):
    schemas = spec["components"]["schemas"]
    priority = schemas["TriggerRule"]["properties"]["priority"]
    assert (priority["minimum"], priority["maximum"]) == (-1_000_000, 1_000_000)
    discount = schemas["Policy"]["properties"]["max_discount_percent"]
    assert discount["minimum"] == 0 and discount["maximum"] == 100


async def test_a_405_names_every_method_of_the_path_in_allow(settings, db, spec):
    """``Allow`` lists the methods of every documented path the URL matches
    (``/api/offers/generate`` is also ``/api/offers/{offer_id}``)."""
    key = (await keys.create_key(db, "acme", "test")).key
    documented: dict[str, set[str]] = {}
    for method, path in operations(spec):
        documented.setdefault(path, set()).add(method)

    def methods_at(url: str) -> set[str]:
        return {
            method
            for path, methods in documented.items()
            if re.fullmatch(re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(path)), url)
            for method in methods
        }

    async with client_for(settings) as client:
        for path in documented:
            url = re.sub(r"\{[^}]+\}", "1", path)
            for method in ("TRACE", "OPTIONS"):
                response = await client.request(method, url, headers=auth(key))
                assert response.status_code == 405, (method, path)
                allowed = set(response.headers["allow"].split(", ")) - {"HEAD"}
                assert allowed == methods_at(url), (url, response.headers["allow"])
                body = response.json()  # the placement API's errors, else ours
                error = body["errors"][0] if "errors" in body else body["error"]
                assert error["code"] == "method_not_allowed"
