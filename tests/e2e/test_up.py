"""`proffer-stream up` as a new user runs it: one command, Ctrl-C, run again, data kept."""

import time
from decimal import Decimal

import httpx
import pytest
from support import api_key_from, start_up, stop, up_ports

pytestmark = pytest.mark.e2e


def wait_for_count(client, external_id, count):
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        response = client.get(f"/api/customers/external/{external_id}")
        if (
            response.status_code == 200
            and response.json()["customer"]["signals"]["event_count"] == count
        ):
            return response.json()["customer"]
        time.sleep(0.2)
    raise AssertionError(f"{external_id} never reached {count} events: {response.text}")


def test_up_runs_everything_and_a_restart_keeps_the_data(tmp_path):
    ports = up_ports()
    process, log_path = start_up(tmp_path, *ports)
    try:
        key = api_key_from(log_path)
        text = log_path.read_text()
        assert f"http://127.0.0.1:{ports[0]}/docs" in text
        with httpx.Client(
            base_url=f"http://127.0.0.1:{ports[0]}",
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        ) as client:
            assert client.get("/docs").status_code == 200
            # The banner's dashboard link signs the local tenant in, once.
            link = next(
                line.split()[1]
                for line in text.splitlines()
                if line.strip().startswith("Dashboard")
            )
            assert link.startswith(f"http://127.0.0.1:{ports[0]}/dashboard/sign-in?token=")
            signed_in = httpx.get(link)
            assert signed_in.status_code == 303 and "proffer_session" in signed_in.cookies
            assert httpx.get(link).status_code == 401
            worker_metrics = httpx.get(f"http://127.0.0.1:{ports[2]}/metrics").text
            assert "proffer_signals_events_counted_total" in worker_metrics
            assert (
                "proffer_sink_rows_total"
                in httpx.get(f"http://127.0.0.1:{ports[2] + 1}/metrics").text
            )
            body = {
                "customer": {"id": "user_001", "email": "alex@startup.com"},
                "events": [
                    {"id": "e1", "type": "page_view", "data": {"page": "/pricing"}},
                    {"id": "e2", "type": "click", "data": {"element": "start_trial"}},
                ],
            }
            assert client.post("/api/webhook/events", json=body).status_code == 200
            wait_for_count(client, "user_001", 2)
    finally:
        stop(process, log_path)

    process, log_path = start_up(tmp_path, *ports)
    try:
        assert api_key_from(log_path) == key, "the local key is kept across restarts"
        with httpx.Client(
            base_url=f"http://127.0.0.1:{ports[0]}",
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        ) as client:
            assert client.get("/api/customers/external/user_001").status_code == 200
            body = {
                "customer": {"id": "user_001"},
                "events": [
                    {"id": "e2", "type": "click", "data": {"element": "start_trial"}},
                    {"id": "e3", "type": "purchase", "data": {"amount": 12.5}},
                ],
            }
            assert client.post("/api/webhook/events", json=body).status_code == 200
            customer = wait_for_count(client, "user_001", 3)
            assert customer["email"] == "alex@startup.com"
            assert Decimal(customer["signals"]["purchase_total"]) == Decimal("12.5")
            events = client.get(f"/api/customers/{customer['id']}/events").json()["events"]
            deadline = time.monotonic() + 30
            while len(events) < 3 and time.monotonic() < deadline:
                time.sleep(0.2)
                events = client.get(f"/api/customers/{customer['id']}/events").json()["events"]
            assert sorted(e["id"] for e in events) == ["e1", "e2", "e3"]
    finally:
        stop(process, log_path)
