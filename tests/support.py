"""Helpers the tests share: processes started as a user would, polling, DSNs."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from proffer_stream.core.settings import Settings
from proffer_stream.db.migrations import migrate
from proffer_stream.db.pool import connect_pool
from proffer_stream.kafka.topics import ensure_topics, wait_for_broker
from proffer_stream.local.embedded import port_is_open
from proffer_stream.local.supervisor import Supervisor

T = TypeVar("T")


def database_dsn(server_dsn: str, database: str) -> str:
    """``server_dsn`` pointed at another database on the same server."""
    parts = urlsplit(server_dsn)
    return urlunsplit(parts._replace(path=f"/{database}"))


async def new_database(server_dsn: str, template: str | None = None) -> str:
    """Create a database with a unique name on the server (empty, or a copy of
    ``template``); return its DSN."""
    name = "t" + uuid.uuid4().hex[:12]
    admin = await asyncpg.connect(server_dsn)
    try:
        copy = f' TEMPLATE "{template}"' if template else ""
        await admin.execute(f'CREATE DATABASE "{name}"{copy}')
    finally:
        await admin.close()
    return database_dsn(server_dsn, name)


_migrated_templates: dict[str, str] = {}
_template_lock = asyncio.Lock()


async def migrated_database(server_dsn: str) -> str:
    """A new database with every migration applied: a copy of one migrated once per
    server and run (running the migrations for each test was a good part of its setup)."""
    async with _template_lock:
        template = _migrated_templates.get(server_dsn)
        if template is None:
            dsn = await new_database(server_dsn)
            pool = await connect_pool(dsn, max_size=1)
            try:
                await migrate(pool)
            finally:
                await pool.close()
            template = _migrated_templates[server_dsn] = urlsplit(dsn).path.lstrip("/")
    return await new_database(server_dsn, template)


async def isolated_settings(kafka_bootstrap: str, postgres_url: str, tmp_path: Path) -> Settings:
    """Settings of their own: topics (by prefix), a new database (migrated) and ports."""
    dsn = await migrated_database(postgres_url)
    name = urlsplit(dsn).path.lstrip("/")
    settings = Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        database_url=dsn,
        data_dir=tmp_path / "data",
        topic_prefix=f"{name}.",
        # A group of its own: a sink killed by an earlier test leaves a member behind
        # in a shared group, and the next sink's join waits for it to time out.
        sink_group=f"{name}.proffer-sink",
        partitions=4,
        gateway_port=kept_port(),
        worker_web_port=kept_port(),
        produce_timeout_seconds=3.0,
        broker_session_timeout=6.0,
        broker_heartbeat_interval=1.0,
        log_level="INFO",
    )
    await wait_for_broker(kafka_bootstrap)
    await ensure_topics(settings)
    return settings


async def produce_paced(
    settings: Settings, topic: str, records: list[tuple[bytes, bytes]], per_second: int
) -> None:
    """Put (key, value) records on ``topic`` at about ``per_second``, a tenth of a second's
    worth at a time, as a steady producer would."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, linger_ms=5)
    await producer.start()
    try:
        chunk = max(per_second // 10, 1)
        for start in range(0, len(records), chunk):
            for key, value in records[start : start + chunk]:
                await producer.send(topic, key=key, value=value)
            await asyncio.sleep(0.1)
        await producer.flush()
    finally:
        await producer.stop()


async def messages_on_topic(settings: Settings, topic: str) -> list[dict[str, Any]]:
    """Every JSON message on ``topic`` from its start, until a second passes with none."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    messages = []
    try:
        while fetched := await consumer.getmany(timeout_ms=1000):
            for records in fetched.values():
                messages += [json.loads(record.value) for record in records]
        return messages
    finally:
        await consumer.stop()


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a process read exactly these settings."""
    return {
        f"PROFFER_{name.upper()}": str(value)
        for name, value in settings.model_dump().items()
        if value is not None
    }


async def wait_for(
    probe: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    *,
    timeout: float = 60.0,
    interval: float = 0.2,
    what: str = "condition",
) -> T:
    """Poll ``probe`` until ``done(result)``; fail with the last result after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if done(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {result!r}")
        await asyncio.sleep(interval)


class Processes:
    """``proffer-stream`` sub-commands as child processes of the shared supervisor."""

    def __init__(self, log_dir: Path) -> None:
        self.supervisor = Supervisor(log_dir)

    def start(self, command: str, settings: Settings, name: str | None = None) -> str:
        """Start ``proffer-stream <command>`` with these settings; return its name."""
        return self.supervisor.start(command, settings_env(settings), name).name

    def start_pipeline(self, settings: Settings) -> None:
        """Sink, worker and gateway; returns once the gateway listens."""
        for command in ("sink", "worker", "gateway"):
            self.start(command, settings)
        deadline = time.monotonic() + 60
        while not port_is_open(settings.gateway_port):
            self.assert_alive()
            if time.monotonic() > deadline:
                raise AssertionError("the gateway did not start:\n" + self.logs())
            time.sleep(0.1)

    def assert_alive(self) -> None:
        for child in self.supervisor.dead():
            code = child.process.returncode
            raise AssertionError(f"{child.name} exited with {code}:\n{self.logs()}")

    def pid(self, name: str) -> int:
        return self.supervisor.pid(name)

    def kill(self, name: str) -> None:
        """SIGKILL, as a crash would."""
        self.supervisor.kill(name)

    def stop(self, name: str, timeout: float = 30.0) -> int:
        """SIGTERM and wait; return the exit code."""
        return self.supervisor.stop(name, timeout)

    def stop_all(self) -> None:
        self.supervisor.stop_all()

    def logs(self, tail: int = 60) -> str:
        return self.supervisor.logs(tail)


# --- `proffer-stream up` as a user runs it -------------------------------------------

KEPT_PORTS = range(20_000, 32_000)
"""Below Linux's ephemeral range (32768-60999): no outgoing connection is given one of
these, so a port found free here stays free for a process started later (or started
again), unlike one of :func:`free_port`'s."""


def kept_port(block: int = 1) -> int:
    """The first of ``block`` consecutive ports of :data:`KEPT_PORTS` nothing listens on."""
    while True:
        first = random.randrange(KEPT_PORTS.start, KEPT_PORTS.stop - block)
        if all(_bindable(port) for port in range(first, first + block)):
            return first


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def up_ports() -> tuple[int, int, int]:
    """The gateway's, the broker's and the first metrics port (of four: workers, sink)
    for :func:`start_up`."""
    return kept_port(), kept_port(), kept_port(4)


def start_up(tmp_path, gateway_port, kafka_port, metrics_port, env=None):
    """`proffer-stream up` on these ports, its data in ``tmp_path``; ``env``: more settings."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PROFFER_")},
        "PROFFER_DATA_DIR": str(tmp_path / "data"),
        "PROFFER_GATEWAY_PORT": str(gateway_port),
        "PROFFER_EMBEDDED_KAFKA_PORT": str(kafka_port),
        "PROFFER_WORKER_WEB_PORT": str(kept_port()),
        "PROFFER_METRICS_PORT": str(metrics_port),
        **(env or {}),
    }
    log = open(tmp_path / f"up-{time.monotonic_ns()}.log", "w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "proffer_stream", "up"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 90
    while "Proffer Stream is up." not in (tmp_path / log.name).read_text():
        assert process.poll() is None, (tmp_path / log.name).read_text()[-3000:]
        assert time.monotonic() < deadline, (tmp_path / log.name).read_text()[-3000:]
        time.sleep(0.2)
    return process, (tmp_path / log.name)


def api_key_from(log_path):
    line = next(x for x in log_path.read_text().splitlines() if x.strip().startswith("API key"))
    return line.split()[2]


def stop(process, log_path):
    """Ctrl-C: SIGINT to the whole process group, as a terminal sends it."""
    os.killpg(process.pid, signal.SIGINT)
    assert process.wait(60) == 0, log_path.read_text()[-3000:]
