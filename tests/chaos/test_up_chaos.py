"""`proffer-stream up` under load: a child killed, Ctrl-C; accepted = stored = counted."""

import asyncio
import os
import signal
import threading
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest
from support import api_key_from, start_up, stop, up_ports

pytestmark = pytest.mark.chaos

CUSTOMERS = 10
PER_POST = 20


class Load:
    """Posts events with ids in a thread until stopped; remembers what was answered 200.

    With ``retry``, a post that got no 200 is sent again with the same event ids, as a
    client should: one the gateway wrote to Kafka but could not answer (it was killed)
    is then counted once, so accepted = stored = counted holds exactly.
    """

    def __init__(self, port: int, key: str, retry: bool = False) -> None:
        self.retry = retry
        self.prefix = uuid.uuid4().hex[:8]  # event ids never repeat another load's
        self.client = httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )
        self.accepted = 0
        self.refused = 0
        self.sent = 0  # events of every post sent, answered or not (yet)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "Load":
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()
        self.thread.join(30)
        self.client.close()

    def _run(self) -> None:
        post = 0
        unanswered = False  # with retry, the last post must get its 200 before we stop
        while unanswered or not self.stopping.is_set():
            customer = f"load-{post % CUSTOMERS}"
            events = [
                {"id": f"{self.prefix}-{post}-{n}", "type": "purchase", "data": {"amount": 1}}
                for n in range(PER_POST)
            ]
            self.sent += PER_POST
            try:
                response = self.client.post(
                    "/api/webhook/events", json={"customer": {"id": customer}, "events": events}
                )
                ok = response.status_code == 200
            except httpx.HTTPError:
                ok = False
            if ok:
                self.accepted += PER_POST
            else:
                self.refused += 1
                time.sleep(0.05)
            unanswered = self.retry and not ok
            if not unanswered:
                post += 1


def child_pid(parent: int, command: str) -> int:
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(fields[1]) == parent and command.encode() in cmdline:
            return int(stat.parent.name)
    raise AssertionError(f"no {command} child of {parent}")


def dsn_from(log_path: Path) -> str:
    line = next(x for x in log_path.read_text().splitlines() if x.strip().startswith("PostgreSQL"))
    return line.split()[1]


async def totals(dsn: str) -> tuple[int, int]:
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM events) AS stored,"
            " (SELECT coalesce(sum(event_count), 0) FROM customers) AS counted"
        )
        return int(row["stored"]), int(row["counted"])
    finally:
        await conn.close()


def wait_for_totals(dsn: str, expected: int, timeout: float = 90) -> tuple[int, int]:
    deadline = time.monotonic() + timeout
    while True:
        found = asyncio.run(totals(dsn))
        if found == (expected, expected) or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def test_worker_sink_and_gateway_killed_under_up_are_restarted_and_nothing_is_lost(tmp_path):
    ports = up_ports()
    process, log_path = start_up(tmp_path, *ports)
    try:
        with Load(ports[0], api_key_from(log_path), retry=True) as load:
            time.sleep(3)
            worker = child_pid(process.pid, "worker")
            os.kill(worker, signal.SIGKILL)
            time.sleep(3)
            sink = child_pid(process.pid, "sink")
            os.kill(sink, signal.SIGKILL)
            time.sleep(3)
            gateway = child_pid(process.pid, "gateway")
            os.kill(gateway, signal.SIGKILL)  # a request in flight may be on Kafka unanswered
            time.sleep(5)
        assert load.accepted > 0 and process.poll() is None
        assert child_pid(process.pid, "worker") != worker, "the worker was restarted"
        assert child_pid(process.pid, "gateway") != gateway, "the gateway was restarted"
        assert wait_for_totals(dsn_from(log_path), load.accepted) == (
            load.accepted,
            load.accepted,
        )
        assert "restarting in" in log_path.read_text()
    finally:
        stop(process, log_path)


def test_ctrl_c_under_load_drains_then_a_restart_has_everything(tmp_path):
    ports = up_ports()
    process, log_path = start_up(tmp_path, *ports)
    key = api_key_from(log_path)
    with Load(ports[0], key) as load:
        time.sleep(4)
        stop(process, log_path)  # Ctrl-C while the load goes on
    assert load.accepted > 0
    assert "draining" in log_path.read_text() or "everything stopped" in log_path.read_text()
    process, log_path = start_up(tmp_path, *ports)
    try:
        assert wait_for_totals(dsn_from(log_path), load.accepted) == (
            load.accepted,
            load.accepted,
        )
    finally:
        stop(process, log_path)


async def fired_without_decision(dsn: str) -> int:
    """Rules a profile marks as fired whose request reached no decision."""
    conn = await asyncpg.connect(dsn)
    try:
        return int(
            await conn.fetchval(
                """
                SELECT count(*) FROM customers c,
                       jsonb_each_text(c.signals->'rules_fired_at') AS f(rule, at)
                WHERE NOT EXISTS (SELECT 1 FROM decisions d
                                  WHERE d.tenant_id = c.tenant_id AND d.customer_id = c.id
                                    AND d.trace->>'rule_id' = f.rule)
                """
            )
        )
    finally:
        await conn.close()


def wait_for_agreement(dsn: str, timeout: float = 120) -> tuple[int, int]:
    """(stored, counted) once they agree and stay so for a second, or as they are."""
    deadline = time.monotonic() + timeout
    while True:
        found = asyncio.run(totals(dsn))
        if found[0] == found[1]:
            time.sleep(1)
            if asyncio.run(totals(dsn)) == found:
                return found
        if time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def test_the_embedded_broker_killed_mid_load_leaves_rows_and_counts_agreeing(tmp_path):
    """kill -9 of the broker while events flow: `up` says so once, starts it again and
    events flow again; what the sink stored but the lost broker took before the worker
    counted it is counted when the customer's profile is restored from PostgreSQL (each
    customer sends again after the restart), so the rows and the counts agree; only what
    nobody consumed is lost, and no rule stays marked as fired without a decision."""
    ports = up_ports()
    process, log_path = start_up(tmp_path, *ports)
    try:
        key = api_key_from(log_path)
        with Load(ports[0], key) as load:
            time.sleep(3)
            os.kill(child_pid(process.pid, "broker"), signal.SIGKILL)  # mid-load
            killed_at = load.accepted
            deadline = time.monotonic() + 90
            while load.accepted < killed_at + 40 * PER_POST and time.monotonic() < deadline:
                time.sleep(0.5)  # every customer posts again once the broker is back
        assert load.accepted >= killed_at + 40 * PER_POST, "events flow again after the restart"
        dsn = dsn_from(log_path)
        stored, counted = wait_for_agreement(dsn)
        assert stored == counted, f"{stored} rows, {counted} counted"
        # A post answered with an error (or not answered when the load stopped) can still
        # have reached the broker, and the sink: stored is at most what was sent.
        assert killed_at <= stored <= load.sent, (
            f"{stored} stored; {load.accepted} accepted, {load.refused} posts refused,"
            f" {load.sent} sent"
        )
        assert asyncio.run(fired_without_decision(dsn)) == 0
        text = log_path.read_text()
        assert text.count("the embedded broker exited") == 1
        assert "the embedded broker is back" in text
        assert process.poll() is None
    finally:
        stop(process, log_path)
