"""The quick start as a script: right after `proffer-stream up` says it is up, with no
pauses, a new tenant's customer sends events and gets an offer."""

import httpx
import pytest
from support import start_up, stop, up_ports

pytestmark = pytest.mark.e2e


def test_the_quick_start_run_as_a_script_right_after_up_answers_the_offer(tmp_path):
    ports = up_ports()
    process, log_path = start_up(tmp_path, *ports)
    try:
        api = f"http://127.0.0.1:{ports[0]}"
        assert httpx.get(f"{api}/readyz", timeout=10).json()["ready"] is True
        signed_up = httpx.post(f"{api}/api/keys", json={"name": "My Key"}, timeout=10)
        assert signed_up.status_code in (200, 201), signed_up.text
        key = signed_up.json()["key"]
        with httpx.Client(
            base_url=api, headers={"Authorization": f"Bearer {key}"}, timeout=30
        ) as client:
            events = {
                "customer": {"id": "user_001", "email": "alex@startup.com"},
                "events": [
                    {"type": "page_view", "data": {"page": "/pricing"}},
                    {"type": "click", "data": {"element": "start_trial"}},
                ],
            }
            accepted = client.post("/api/webhook/events", json=events)
            assert accepted.status_code == 200, accepted.text
            generated = client.post(
                "/api/offers/generate", json={"external_customer_id": "user_001"}
            )
            assert generated.status_code == 200, generated.text
            offer = generated.json()["offer"]
            assert offer["external_customer_id"] == "user_001"
            fetched = client.get(f"/api/offers/{offer['id']}")
            assert fetched.status_code == 200, fetched.text
            assert fetched.json()["offer"]["id"] == offer["id"]
    finally:
        stop(process, log_path)
