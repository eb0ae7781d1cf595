"""Issue 21, item 8: the spec makes good clients. A Python client generated from the live
spec with openapi-python-client (the dev extra pins 0.29) has every operation, named for
people, and runs the quick start (sign-up, events, generate, the offer) and a rules
change against the real pipeline."""

import importlib
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.e2e

PACKAGE = "proffer_client"


def generate_client(spec: bytes, where: Path) -> None:
    """Generate the client package ``PACKAGE`` into ``where`` and make it importable."""
    spec_path = where / "openapi.json"
    spec_path.write_bytes(spec)
    bin_dir = Path(sys.executable).parent  # the generator formats its output with ruff
    command = ["generate", "--path", spec_path, "--meta", "none", "--output-path", where / PACKAGE]
    generated = subprocess.run(
        [bin_dir / "openapi-python-client", *command],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"},
        check=False,
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    assert "Warning" not in generated.stdout, generated.stdout  # nothing skipped
    sys.path.insert(0, str(where))


def wait_until_ready(api, client) -> None:
    deadline = time.monotonic() + 60
    while (readiness := api("operations.check_readiness").sync(client=client)).ready is not True:
        assert time.monotonic() < deadline, readiness
        time.sleep(0.5)


@pytest.fixture
def client_package(tmp_path):
    yield lambda name: importlib.import_module(f"{PACKAGE}.{name}")
    sys.path.remove(str(tmp_path))
    for module in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
        del sys.modules[module]


def test_a_client_generated_from_the_spec_runs_the_quick_start_and_a_rules_change(
    settings, processes, tmp_path, client_package
):
    settings = settings.model_copy(update={"signup_enabled": True})
    processes.start_pipeline(settings)
    base_url = f"http://127.0.0.1:{settings.gateway_port}"
    generate_client(httpx.get(f"{base_url}/openapi.json", timeout=10).content, tmp_path)

    def api(operation):
        return client_package(f"api.{operation}")

    models = client_package("models")
    client_module = client_package("client")
    anonymous = client_module.Client(base_url=base_url, timeout=httpx.Timeout(30))
    wait_until_ready(api, anonymous)

    created = api("keys.create_key").sync(client=anonymous, body=models.ApiKeyCreate(name="My Key"))
    assert isinstance(created, models.ApiKeyCreated), created
    client = client_module.AuthenticatedClient(
        base_url=base_url, token=created.key, timeout=httpx.Timeout(30)
    )
    events = models.WebhookEventsRequest(
        customer=models.CustomerIn(id="user_001", email="alex@startup.com"),
        events=[
            models.EventIn(
                type_="page_view", data=models.EventInData.from_dict({"page": "/pricing"})
            ),
            models.EventIn(type_="click"),
        ],
    )
    accepted = api("ingest.ingest_events").sync(client=client, body=events)
    assert isinstance(accepted, models.IngestResponse) and accepted.events_ingested == 2

    generated = api("offers.generate_offer").sync(
        client=client, body=models.ByExternalCustomerId(external_customer_id="user_001")
    )
    assert isinstance(generated, models.OfferResponse), generated
    fetched = api("offers.get_offer").sync(client=client, offer_id=generated.offer.id)
    assert isinstance(fetched, models.OfferResponse), fetched
    assert fetched.offer.external_customer_id == "user_001"

    before = api("rules_and_policy.get_rules").sync(client=client)
    assert isinstance(before, models.RulesView) and before.is_default
    rule = models.TriggerRule(
        id="checkout-visits",
        name="Visited checkout twice, never bought",
        conditions=models.RuleConditions(
            min_page_views=models.RuleConditionsMinPageViews.from_dict({"/checkout": 2}),
            max_purchase_count=0,
        ),
        priority=50,
        cooldown_hours=72,
    )
    changed = api("rules_and_policy.set_rules").sync(
        client=client, body=models.RulesUpdate(rules=[rule])
    )
    assert isinstance(changed, models.RulesView), changed
    after = api("rules_and_policy.get_rules").sync(client=client)
    assert isinstance(after, models.RulesView)
    assert [r.id for r in after.rules] == ["checkout-visits"] and not after.is_default
    assert after.rules[0].conditions.min_page_views.to_dict() == {"/checkout": 2}
    processes.assert_alive()
