"""Issue 21, item 6: strict types and clear errors. A wrong type is a 422 naming the field;
a body that is not JSON (not UTF-8, a lone surrogate, nested too deep, cut short) is a
400 invalid_json saying what and where, on every route with a body; a body too large is
413 naming the limit; any external id reads back, a ``/`` or spaces only included."""

from datetime import UTC, datetime

import pytest
from test_gateway import auth, client_for

from proffer_stream.core.identity import customer_id
from proffer_stream.db import keys
from proffer_stream.signals.fold import new_signals

pytestmark = pytest.mark.integration

BODY_ROUTES = [
    ("PATCH", "/api/offers/1"),
    ("PUT", "/api/rules"),
    ("PUT", "/api/policy"),
    ("POST", "/api/offers/generate"),
    ("POST", "/api/offers/generate-batch"),
    ("POST", "/api/keys"),
]


@pytest.fixture
async def key(db):
    return (await keys.create_key(db, "acme", "test")).key


def send(client, method, path, key, content, content_type="application/json"):
    headers = {**auth(key), "Content-Type": content_type}
    return client.request(method, path, content=content, headers=headers)


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"{not json", "line 1 column 2"),
        (b'{"status": "appr', "EOF while parsing"),
        (b"\xff\xfe{}", "not UTF-8: byte 0 (0xff)"),
        (b'{"name": "\\ud800"}', "lone surrogate"),
        (b"[" * 1000 + b"]" * 1000, "nesting deeper than 200 levels"),
    ],
    ids=["garbage", "cut-short", "not-utf8", "lone-surrogate", "too-deep"],
)
async def test_a_body_that_is_not_json_is_400_invalid_json_saying_why(
    settings, key, method, path, content, why
):
    async with client_for(settings) as client:
        response = await send(client, method, path, key, content)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_json"
    assert why in error["message"] and error["details"][0]["loc"] == "body"


@pytest.mark.parametrize("value", [True, "10", 10.5, None])  # 10.0 is 10, as in JSON
async def test_a_policy_number_of_another_type_is_422_naming_the_field(settings, key, value):
    async with client_for(settings) as client:
        response = await client.put(
            "/api/policy", json={"max_discount_percent": value}, headers=auth(key)
        )
    assert response.status_code == 422, response.text
    [detail] = response.json()["error"]["details"]
    assert detail["loc"] == "body.max_discount_percent"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("priority", 10**400),
        ("priority", 1_000_001),
        ("priority", "1"),
        ("enabled", "yes"),
        ("version", 2**31),
        ("cooldown_hours", "24"),
    ],
)
async def test_a_rule_field_out_of_range_or_of_another_type_is_422(settings, key, field, value):
    rule = {"id": "r1", "name": "R", "conditions": {}, field: value}
    async with client_for(settings) as client:
        response = await client.put("/api/rules", json={"rules": [rule]}, headers=auth(key))
    assert response.status_code == 422, response.text
    locs = [d["loc"] for d in response.json()["error"]["details"]]
    assert any(loc.endswith(field) for loc in locs), locs


async def test_generate_and_batch_take_numbers_as_numbers(settings, key):
    async with client_for(settings) as client:
        generate = await client.post(
            "/api/offers/generate", json={"customer_id": "12"}, headers=auth(key)
        )
        batch = await client.post(
            "/api/offers/generate-batch", json={"limit": True}, headers=auth(key)
        )
    assert generate.status_code == batch.status_code == 422


async def test_a_body_over_the_limit_is_413_naming_it(settings, key):
    small = settings.model_copy(update={"max_body_bytes": 2000})
    rules = {"rules": [{"id": f"r{i}", "name": "x" * 50, "conditions": {}} for i in range(50)]}
    async with client_for(small) as client:
        response = await client.put("/api/rules", json=rules, headers=auth(key))
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "body_too_large"
    assert "2000 bytes" in response.json()["error"]["message"]


@pytest.mark.parametrize("external_id", ["a/b", " ", "a b/c%d"])
async def test_any_external_id_reads_back(settings, key, db, external_id):
    signals = new_signals("acme", external_id)
    await db.execute(
        "INSERT INTO customers (tenant_id, id, external_id, event_count, signals, updated_at)"
        " VALUES ('acme', $1, $2, 0, $3, $4)",
        customer_id("acme", external_id),
        external_id,
        signals.model_dump_json(),
        datetime.now(UTC),
    )
    quoted = "".join(c if c.isalnum() else f"%{ord(c):02X}" for c in external_id)
    async with client_for(settings) as client:
        response = await client.get(f"/api/customers/external/{quoted}", headers=auth(key))
    assert response.status_code == 200, response.text
    assert response.json()["customer"]["external_id"] == external_id
