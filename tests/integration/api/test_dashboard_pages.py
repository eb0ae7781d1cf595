"""The dashboard in-process (ASGI), against the real broker and PostgreSQL: sign-in by key
and by one-time link, the session cookie, CSRF, a revoked key's session ending within a
second, tenants kept apart, page times, and no server error whatever the query or form."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from proffer_stream.api.app import create_app
from proffer_stream.api.dashboard.routes import queue
from proffer_stream.catalog.models import IntegrationDefinition
from proffer_stream.db import dashboard, keys
from proffer_stream.db.catalog import apply_catalog_definitions
from proffer_stream.db.replies import feed_key
from proffer_stream.db.tenant_config import apply_config_changes
from proffer_stream.local.stack import sign_in_link
from proffer_stream.offers.config import ConfigChange
from proffer_stream.offers.policy import Policy
from proffer_stream.offers.rules import RuleSet, TriggerRule

pytestmark = pytest.mark.integration

PAGES = [
    "/dashboard",
    "/dashboard/queue",
    "/dashboard/customers",
    "/dashboard/rules",
    "/dashboard/catalog",
    "/dashboard/integrations",
    "/dashboard/setup",
]
# Pages with query parameters, and the forms that change things.
QUERIES = {
    "/dashboard": ["period"],
    "/dashboard/queue": ["status", "channel", "rule", "customer"],
    "/dashboard/customers": ["q"],
    "/dashboard/rules": ["rules_before", "policy_before"],
    "/dashboard/catalog": ["edit"],
    "/dashboard/integrations": ["edit"],
    "/dashboard/sign-in": ["token"],
}
FORMS = {
    "/dashboard/queue": ["act", "ids"],
    "/dashboard/rules": ["document"],
    "/dashboard/policy": ["document"],
    "/dashboard/catalog/offers": ["id", "document"],
    "/dashboard/catalog/offers/1": ["act"],
    "/dashboard/catalog/collections": ["collection"],
    "/dashboard/catalog/collections/1": [],
    "/dashboard/integrations": ["id", "document"],
    "/dashboard/integrations/1": [],
    "/dashboard/setup/keys": ["name"],
    "/dashboard/setup/keys/999999/revoke": [],
}


@pytest.fixture
async def gateway(settings) -> AsyncIterator[httpx.AsyncClient]:
    # No worker runs here: a command the dashboard sends answers "still being applied".
    app = create_app(settings.model_copy(update={"offer_wait_seconds": 0.0}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield client


async def sign_in(gateway: httpx.AsyncClient, key: str) -> httpx.Response:
    """Send the sign-in form as a browser would: the page's token with the key."""
    page = await gateway.get("/dashboard/sign-in")
    token = re.search(r'name="sign_in_token" value="([^"]+)"', page.text)
    assert token, page.text[:500]
    return await gateway.post(
        "/dashboard/sign-in", data={"api_key": key, "sign_in_token": token.group(1)}
    )


async def signed_in(gateway: httpx.AsyncClient, key: str) -> str:
    """Sign in; return the session's CSRF token (the cookie stays in the client)."""
    answer = await sign_in(gateway, key)
    assert answer.status_code == 303, answer.text
    return csrf_of(await gateway.get("/dashboard/setup"))


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)


async def test_sign_in_session_csrf_and_revocation(gateway, db):
    key = await keys.create_key(db, "acme", "ops")

    assert (await gateway.get("/dashboard")).headers["location"] == "/dashboard/sign-in"
    forged = await gateway.post("/dashboard/sign-in", data={"api_key": key.key})
    assert forged.status_code == 403  # no token of the sign-in page: another site's form
    refused = await sign_in(gateway, "pk_wrong")
    assert refused.status_code == 401 and "not valid" in refused.text

    answer = await sign_in(gateway, key.key)
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.lower().replace(
        "samesite", "SameSite"
    )
    assert key.key not in cookie  # the session names the key by its hash only
    for page in PAGES:
        started = time.perf_counter()
        shown = await gateway.get(page)
        elapsed = time.perf_counter() - started
        assert shown.status_code == 200, (page, shown.text[:2000])
        assert "acme" in shown.text
        print(f"{page}: {elapsed * 1000:.0f} ms")

    # A change without the session's CSRF token is refused, whatever the cookie.
    forged = await gateway.post("/dashboard/setup/keys", data={"name": "forged"})
    assert forged.status_code == 403 and "did not come from this dashboard" in forged.text
    token = csrf_of(await gateway.get("/dashboard/setup"))
    made = await gateway.post("/dashboard/setup/keys", data={"name": "second", "csrf": token})
    assert made.status_code == 200 and 'id="new-key-value"' in made.text
    assert [k.name for k in await keys.list_keys(db, "acme")] == ["ops", "second"]

    # Revoking the session's own key ends the session within a second.
    revoked = await gateway.post(f"/dashboard/setup/keys/{key.id}/revoke", data={"csrf": token})
    assert revoked.status_code == 200
    await asyncio.sleep(1.1)
    assert (await gateway.get("/dashboard")).status_code == 303


async def test_a_one_time_link_signs_in_once(gateway, db, settings):
    key = await keys.create_key(db, "acme", "local development")
    link = await sign_in_link(settings, key.key)  # as the `up` banner prints it
    origin = f"http://{settings.gateway_host}:{settings.gateway_port}/dashboard/sign-in?token="
    assert link.startswith(origin)
    token = link.removeprefix(origin)
    first = await gateway.get("/dashboard/sign-in", params={"token": token})
    assert first.status_code == 303 and first.headers["location"] == "/dashboard"
    assert (await gateway.get("/dashboard")).status_code == 200
    gateway.cookies.clear()
    again = await gateway.get("/dashboard/sign-in", params={"token": token})
    assert again.status_code == 401 and "used already" in again.text
    expired = await dashboard.create_sign_in_token(db, keys.hash_key(key.key), timedelta(0))
    late = await gateway.get("/dashboard/sign-in", params={"token": expired})
    assert late.status_code == 401


async def test_a_tenant_sees_only_its_own(gateway, db):
    ours = await keys.create_key(db, "acme", "ops")
    theirs = await keys.create_key(db, "globex", "ops")
    await signed_in(gateway, theirs.key)
    shown = await gateway.get("/dashboard/setup")
    assert "globex" in shown.text and ours.key[:10] not in shown.text
    token = csrf_of(shown)
    # Revoking another tenant's key by its id does nothing.
    answer = await gateway.post(f"/dashboard/setup/keys/{ours.id}/revoke", data={"csrf": token})
    assert "not an active key here" in answer.text
    assert await keys.key_owner(db, ours.key) is not None


texts = st.text(st.characters(codec="utf-8"), max_size=300) | st.sampled_from(
    ["", "0", "-1", "9" * 30, "generated", "approved:1", "week", "\x00", "%00", "{}", "[]"]
)


# The app, on the event loop's thread, uses the random module (ids) while hypothesis draws
# in its own thread: the draws do not depend on it.
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
async def test_no_server_error_on_any_query_or_form(gateway, db):
    key = await keys.create_key(db, "acme", "fuzz")
    csrf = await signed_in(gateway, key.key)
    loop = asyncio.get_running_loop()

    def send(method: str, path: str, values: dict[str, Any]) -> httpx.Response:
        if method == "GET":
            call = gateway.get(path, params=values)
        else:
            call = gateway.post(path, data={**values, "csrf": csrf})
        return asyncio.run_coroutine_threadsafe(call, loop).result(30)

    routes = [("GET", p, f) for p, f in QUERIES.items()]
    routes += [("POST", p, f) for p, f in FORMS.items()]
    cases = st.sampled_from(routes).flatmap(
        lambda r: st.tuples(st.just(r), st.fixed_dictionaries({f: texts for f in r[2]}))
    )

    @hypothesis_settings(
        max_examples=60,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(cases)
    def fuzz(case: tuple[tuple[str, str, list[str]], dict[str, str]]) -> None:
        (method, path, _), values = case
        answer = send(method, path, values)
        assert answer.status_code < 500, (method, path, values, answer.text[:1000])

    await asyncio.to_thread(fuzz)


async def test_the_live_feed_streams_a_tenants_offer_events_and_resumes(settings, db, monkeypatch):
    monkeypatch.setattr(queue, "FEED_STREAM_SECONDS", 1.5)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            await signed_in(client, (await keys.create_key(db, "acme", "ops")).key)
            pulse = app.state.dashboard_pulse

            async def soon() -> None:
                await asyncio.sleep(0.3)
                pulse.on_keys([feed_key("globex", "offer.generated", 7, "generated", "x", "r")])
                pulse.on_keys([feed_key("acme", "offer.generated", 8, "generated", "ann", "r")])

            started = time.monotonic()
            _, stream = await asyncio.gather(soon(), client.get("/dashboard/queue/feed"))
            assert time.monotonic() - started < 5  # the stream ends; the browser reconnects
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.text.splitlines()
            assert lines[0] == "retry: 500" and "id: 2" in lines
            assert '"customer": "ann"' in stream.text and '"x"' not in stream.text

            pulse.on_keys([feed_key("acme", "offer.approved", 8, "approved", "ann", "k")])
            resumed = await client.get("/dashboard/queue/feed", headers={"Last-Event-ID": "2"})
            assert "id: 3" in resumed.text and "id: 2" not in resumed.text


async def test_the_rules_page_lists_the_versions_newest_first_a_page_at_a_time(gateway, db):
    key = await keys.create_key(db, "acme", "ops")
    await signed_in(gateway, key.key)
    base = datetime(2026, 3, 17, 12, 0, tzinfo=UTC)
    rules = [
        TriggerRule(id=f"r{n}", name=f"Rule {n}", conditions={"min_counts": {"click": n}})
        for n in range(1, 13)
    ]
    changes = [
        ConfigChange(
            tenant_id="acme",
            kind="rules",
            version=v,
            rules=RuleSet(version=v, rules=rules[:v]),
            changed_at=base + timedelta(minutes=v),
            changed_by="ops",
        )
        for v in range(1, 13)
    ]
    changes += [
        ConfigChange(
            tenant_id="acme",
            kind="policy",
            version=v,
            policy=Policy(max_discount_percent=30 - 5 * v),
            changed_at=base + timedelta(minutes=v),
        )
        for v in (1, 2)
    ]
    changes.append(changes[0].model_copy(update={"tenant_id": "globex"}))
    async with db.acquire() as conn:  # as the sink projects them
        await apply_config_changes(conn, changes)

    started = time.perf_counter()
    page = await gateway.get("/dashboard/rules")
    print(f"rules page with versions: {(time.perf_counter() - started) * 1000:.0f} ms")
    assert page.status_code == 200
    shown = re.findall(r'id="rules-version-(\d+)"', page.text)
    assert shown == [str(v) for v in range(12, 2, -1)]  # newest first, ten of them
    assert re.findall(r'id="policy-version-(\d+)"', page.text) == ["2", "1"]
    assert "added r12" in page.text and "max_discount_percent: 25 → 20" in page.text
    assert "max_discount_percent: 30 → 25" in page.text  # version 1 against the default
    assert "2026-03-17 12:12:00" in page.text and "&#34;r12&#34;" in page.text  # the JSON
    older = re.search(r'href="(/dashboard/rules\?rules_before=3)"', page.text)
    assert older, "no link to the older versions"
    second = await gateway.get(older.group(1))
    assert re.findall(r'id="rules-version-(\d+)"', second.text) == ["2", "1"]
    assert "added r2" in second.text and 'id="rules-older"' not in second.text
    assert "Newest versions" in second.text

    # Another tenant's versions are its own.
    gateway.cookies.clear()
    await signed_in(gateway, (await keys.create_key(db, "globex", "ops")).key)
    theirs = await gateway.get("/dashboard/rules")
    assert re.findall(r'id="rules-version-(\d+)"', theirs.text) == ["1"]
    assert 'id="policy-no-versions"' in theirs.text


async def test_integrations_are_the_tenants_own_and_a_mistake_is_shown_beside_its_field(
    gateway, db
):
    now = datetime(2026, 3, 17, 12, 0, tzinfo=UTC)
    ours, theirs = (
        IntegrationDefinition(
            id=id_,
            tenant_id=tenant,
            version=1,
            name=name,
            allowed_sites=["shop.example"],
            blocked_sites=["bad.example"],
            placements={"order_confirmation": {"offer_ids": [3, 4], "open_offers": True}},
            created_at=now,
            updated_at=now,
            command_id=f"c{id_}",
        )
        for id_, tenant, name in ((5, "acme", "Acme shop"), (6, "globex", "Globex shop"))
    )
    async with db.acquire() as conn:  # as the sink projects them
        await apply_catalog_definitions(conn, [ours, theirs])
    csrf = await signed_in(gateway, (await keys.create_key(db, "acme", "ops")).key)

    page = await gateway.get("/dashboard/integrations")
    assert page.status_code == 200 and 'href="/dashboard/integrations"' in page.text
    assert 'id="integration-5"' in page.text and "Globex" not in page.text
    assert "offers 3, 4; the customer&#39;s open offers" in page.text
    assert "<code>bad.example</code>" in page.text
    editing = await gateway.get("/dashboard/integrations", params={"edit": "5"})
    assert "Edit integration #5" in editing.text and "&#34;Acme shop&#34;" in editing.text
    assert (
        "Edit integration #6"
        not in (await gateway.get("/dashboard/integrations", params={"edit": "6"})).text
    )

    # A mistake is named beside the field, as the API's 422 names it; nothing is sent.
    bad = json.dumps({"name": "Acme shop", "allowed_sites": ["not a host!"]})
    answer = await gateway.post(
        "/dashboard/integrations", data={"id": "5", "document": bad, "csrf": csrf}
    )
    assert answer.status_code == 422
    errors = re.search(
        r'<ul class="field-errors" id="integration-document-errors".*?</ul>', answer.text, re.S
    )
    assert errors and 'data-loc="body.allowed_sites[0]"' in errors.group(0)
    assert "not a host!" in answer.text  # the text is kept to correct it

    # Another tenant's integration cannot be changed nor archived from here.
    good = json.dumps({"name": "Taken over"})
    answer = await gateway.post(
        "/dashboard/integrations", data={"id": "6", "document": good, "csrf": csrf}
    )
    assert answer.status_code == 404 and "No integration 6" in answer.text
    answer = await gateway.post("/dashboard/integrations/6", data={"csrf": csrf})
    assert answer.status_code == 404 and "No integration 6" in answer.text
    assert (
        await db.fetchval("SELECT definition->>'name' FROM catalog_integrations WHERE id = 6")
    ) == "Globex shop"
