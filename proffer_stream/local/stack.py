"""`proffer-stream up`: broker, PostgreSQL, migrations, then worker, sink and gateway.

Servers named in the settings are used instead of the embedded ones. Children are
supervised: one that dies is restarted with backoff while the rest keep running. Ctrl-C
drains: the gateway stops accepting first, the worker and the sink finish what is on
the topics, then everything stops.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import shutil
import signal
import time

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from proffer_stream.core.settings import Settings
from proffer_stream.db import dashboard, keys
from proffer_stream.db.migrations import migrate
from proffer_stream.db.pool import connect_pool, redact
from proffer_stream.kafka.lag import group_lag
from proffer_stream.kafka.progress import GroupState, group_state
from proffer_stream.kafka.topics import ensure_topics, topics_for, wait_for_broker, worker_app_id
from proffer_stream.llm import local_server
from proffer_stream.local.embedded import EmbeddedBroker, EmbeddedPostgres, port_is_open
from proffer_stream.local.restore import restore_catalog, restore_tenant_config
from proffer_stream.local.supervisor import GaveUp, RestartPolicy, Supervisor

log = logging.getLogger(__name__)

LOCAL_TENANT = "local"
DRAIN_SECONDS = 120.0


class LocalStack:
    """Everything in one process tree, for a new user."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.broker: EmbeddedBroker | None = None
        self.postgres: EmbeddedPostgres | None = None
        self.supervisor = Supervisor(restart=RestartPolicy())
        self.stopping = False

    def run(self) -> int:
        """Start everything, print where it is, run until Ctrl-C or a child keeps dying."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._request_stop)
        settings = self.settings
        try:
            settings = self._start_servers()
            api_key = self._prepare(settings)
            self._start_processes(settings)
            if not self._wait_until_serving(settings):
                return 1
            if not self._wait_until_consuming(settings):
                return 1
            link = asyncio.run(sign_in_link(settings, api_key))
            embedded = self.broker is not None
            print(banner(settings, api_key, link, embedded_broker=embedded), flush=True)
            return self._supervise(settings)
        finally:
            self._stop_all(settings)

    def _request_stop(self, signum: int, _frame: object) -> None:
        if not self.stopping:
            log.info("stopping (%s): draining first...", signal.Signals(signum).name)
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
            "PROFFER_DATABASE_URL": settings.database_url,
            "PROFFER_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
            # Self-service sign-up (POST /api/keys without a key), as in the quick start.
            "PROFFER_SIGNUP_ENABLED": os.environ.get("PROFFER_SIGNUP_ENABLED", "true"),
        }
        if self.broker is not None:
            forget_worker_state(settings.model_copy(update={"worker_instance": ""}))
        if settings.llm_local_model:
            env |= local_model_env(settings)
            self.supervisor.start("llm-server", env)
        sink_env = {"PROFFER_METRICS_PORT": str(settings.metrics_port + 1)}
        self.supervisor.start("sink", {**env, **(sink_env if settings.metrics_port else {})})
        log.info(
            "starting %d worker%s (up --workers N, or PROFFER_WORKERS)",
            settings.workers,
            "" if settings.workers == 1 else "s",
        )
        for name, worker_env in worker_envs(settings).items():
            self.supervisor.start("worker", {**env, **worker_env}, name=name)
        self.supervisor.start("gateway", env)

    def _wait_until_serving(self, settings: Settings, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while not self.stopping and time.monotonic() < deadline:
            try:
                self.supervisor.watch()
            except GaveUp as exc:
                log.error("%s", exc)
                return False
            if all(port_is_open(port, host) for host, port in _serving_ports(settings)):
                return True
            time.sleep(0.1)
        return False

    def _wait_until_consuming(self, settings: Settings, timeout: float = 180.0) -> bool:
        """Wait until the worker and the sink serve: each group settled with its members
        (every worker `up` started), every partition assigned, nothing left to consume.

        Until then a record put on the topics waits for a group to join or recover, and
        the quick start run as a script got ``customer_not_found`` (about 5 s). Says
        what each is doing every few seconds.
        """
        deadline = time.monotonic() + timeout
        said, said_at = "", 0.0
        while not self.stopping:
            try:
                self.supervisor.watch()
            except GaveUp as exc:
                log.error("%s", exc)
                return False
            try:
                states = asyncio.run(consumer_groups(settings))
            except Exception as exc:  # the broker is starting or restarting: ask again
                states = {}
                log.debug("cannot read the consumer groups yet: %r", exc)
            members = {"worker": settings.workers, "sink": 1}
            waiting = {
                name: state for name, state in states.items() if not state.serving(members[name])
            }
            if states and not waiting:
                log.info("worker and sink are serving")
                return True
            line = "; ".join(f"{name}: {state.describe()}" for name, state in waiting.items())
            if line != said or time.monotonic() - said_at > 5:
                log.info("waiting for the consumers: %s", line or "asking the broker")
                said, said_at = line, time.monotonic()
            if time.monotonic() > deadline:
                log.error("the consumers did not start serving within %.0fs: %s", timeout, line)
                return False
            time.sleep(0.2)
        return False

    def _supervise(self, settings: Settings) -> int:
        while not self.stopping:
            try:
                self.supervisor.watch()
            except GaveUp as exc:
                log.error("%s; stopping everything", exc)
                return 1
            self._revive_broker(settings)
            time.sleep(0.2)
        return 0

    def _revive_broker(self, settings: Settings) -> None:
        """The embedded broker died: say so once, start it again, recreate the topics."""
        if self.broker is None or self.broker.process is None:
            return
        code = self.broker.process.poll()
        if code is None:
            return
        log.error(
            "the embedded broker exited with code %s; what it held in memory and no process"
            " had consumed yet is lost. Restarting it; the workers restore state from"
            " PostgreSQL.",
            code,
        )
        # A new memory broker is a new cluster: its groups, offsets and changelogs are
        # gone, and its offsets start again at 0. A consumer of the old one must not
        # meet it: the old worker rejoined it on its own (seen), and would take its
        # records for replays of offsets it had applied, skip them and commit past them
        # (events stored, never counted). So the workers are killed first (what they
        # hold belongs to the lost log), the sink stops (it writes what it has read),
        # and all of them start afresh against the new broker.
        for name in worker_envs(settings):
            self.supervisor.halt(name, at_once=True)
        self.supervisor.halt("sink")
        self.broker = EmbeddedBroker(self.broker.port, self.broker.log_file)
        self.broker.start()
        asyncio.run(_topics_with_config(settings))
        for name, worker_env in worker_envs(settings).items():
            own = _with_instance(settings, worker_env)
            self.supervisor.respawn(name, before=functools.partial(forget_worker_state, own))
        self.supervisor.respawn("sink")
        log.warning(
            "the embedded broker is back at %s; workers and sink restarted",
            self.broker.bootstrap_servers,
        )

    def _stop_all(self, settings: Settings) -> None:
        if "gateway" in self.supervisor.children:
            self._stop_child("gateway")
            self._drain(settings)
        self.supervisor.stop_all(order=[*worker_envs(settings), "sink"])
        if self.broker is not None:
            self.broker.stop()
        if self.postgres is not None:
            self.postgres.stop()
        log.info("everything stopped")

    def _stop_child(self, name: str) -> None:
        try:
            self.supervisor.stop(name, timeout=20)
        except TimeoutError as exc:
            log.warning("%s", exc)

    def _drain(self, settings: Settings) -> None:
        """Wait until the worker and then the sink have consumed what is on the topics.

        A child that died meanwhile is restarted to finish; one that keeps dying ends
        the wait (what it left stays on the topics).
        """
        topics = topics_for(settings)
        groups = [
            (
                "worker",
                worker_app_id(settings.topic_prefix, settings.worker_id),
                [topic.name for topic in topics.worker_inputs()],
            ),
            ("sink", settings.sink_group, [topic.name for topic in topics.sink_inputs()]),
        ]
        deadline = time.monotonic() + DRAIN_SECONDS
        for name, group, names in groups:
            lag = _lag(settings, group, names)
            while lag and time.monotonic() < deadline:
                log.info("draining: %s has %d records to go", name, lag)
                time.sleep(1.0)
                try:
                    self.supervisor.watch()
                except GaveUp as exc:
                    log.error("stopped draining: %s", exc)
                    return
                lag = _lag(settings, group, names)
            if lag:
                log.warning("%s still had %d records to go after %.0fs", name, lag, DRAIN_SECONDS)


async def consumer_groups(settings: Settings) -> dict[str, GroupState]:
    """The state of the worker's and the sink's consumer groups."""
    topics = topics_for(settings)
    groups = {
        "worker": (
            worker_app_id(settings.topic_prefix, settings.worker_id),
            [topic.name for topic in topics.worker_inputs()],
        ),
        "sink": (settings.sink_group, [topic.name for topic in topics.sink_inputs()]),
    }
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=None)
    await admin.start()
    try:
        await consumer.start()
        try:
            return {
                name: await group_state(admin, consumer, group, names)
                for name, (group, names) in groups.items()
            }
        finally:
            await consumer.stop()
    finally:
        await admin.close()


def _lag(settings: Settings, group: str, topics: list[str]) -> int:
    try:
        return asyncio.run(group_lag(settings.bootstrap_servers, group, topics))
    except Exception as exc:  # draining is best effort once Kafka is gone
        log.warning("cannot read the lag of %s: %r", group, exc)
        return 0


def local_model_env(settings: Settings) -> dict[str, str]:
    """Where the offline model `up` starts listens, for it and for the worker's writer."""
    return {
        "PROFFER_LLM_BASE_URL": f"http://127.0.0.1:{local_server.DEFAULT_PORT}/v1",
        "PROFFER_LLM_MODEL": local_server.MODEL_NAME,
    }


def _serving_ports(settings: Settings) -> list[tuple[str, int]]:
    """What answers once everything is up: the gateway, and the metrics of workers and sink."""
    ports = [(settings.gateway_host, settings.gateway_port)]
    if settings.metrics_port:
        ports += [("127.0.0.1", port) for port in _metrics_ports(settings).values()]
    return ports


def _metrics_ports(settings: Settings) -> dict[str, int]:
    """Consecutive ports from PROFFER_METRICS_PORT: the first worker, the sink, then the
    other workers (one worker and the sink keep the ports they always had)."""
    port = settings.metrics_port
    names = worker_names(settings.workers)
    ports = {names[0]: port, "sink": port + 1}
    ports |= {name: port + 1 + n for n, name in enumerate(names[1:], start=1)}
    return ports


def worker_envs(settings: Settings) -> dict[str, dict[str, str]]:
    """The supervised name and the extra environment of each worker `up` starts.

    One worker is ``worker`` with the data dir it always had. More are ``worker-1`` ..
    ``worker-N``, each with its own instance (its table stores under
    ``<data_dir>/faust/<n>``, found again when it is restarted) and its own metrics port.
    """
    ports = _metrics_ports(settings) if settings.metrics_port else {}
    envs: dict[str, dict[str, str]] = {}
    for n, name in enumerate(worker_names(settings.workers), start=1):
        env = envs[name] = {}
        if settings.workers > 1:
            env["PROFFER_WORKER_INSTANCE"] = str(n)
        if name in ports:
            env["PROFFER_METRICS_PORT"] = str(ports[name])
    return envs


def worker_names(count: int) -> list[str]:
    """``worker`` alone, else ``worker-1`` .. ``worker-<count>``."""
    return ["worker"] if count == 1 else [f"worker-{n}" for n in range(1, count + 1)]


def _with_instance(settings: Settings, worker_env: dict[str, str]) -> Settings:
    instance = worker_env.get("PROFFER_WORKER_INSTANCE", settings.worker_instance)
    return settings.model_copy(update={"worker_instance": instance})


async def prepare_database_and_topics(settings: Settings, local_key: str | None = None) -> str:
    """Migrate and create the topics; return a valid API key of the local tenant.

    That is ``local_key`` when it is still valid, else a new key.
    """
    await wait_for_broker(settings.bootstrap_servers)
    created = await ensure_topics(settings)
    if created:
        log.info("created topics: %s", ", ".join(created))
    pool = await connect_pool(settings.database_url, max_size=2)
    try:
        applied = await migrate(pool)
        if applied:
            log.info("applied migrations: %s", ", ".join(applied))
        await restore_tenant_config(settings)
        await restore_catalog(settings)
        if local_key and await keys.tenant_for_key(pool, local_key) == LOCAL_TENANT:
            return local_key
        new_key = await keys.create_key(pool, LOCAL_TENANT, "local development")
        log.info("created an API key for tenant %r", LOCAL_TENANT)
        return new_key.key
    finally:
        await pool.close()


async def _topics_with_config(settings: Settings) -> None:
    """The topics of a new broker, with the tenant config and catalog PostgreSQL kept."""
    await ensure_topics(settings)
    await restore_tenant_config(settings)
    await restore_catalog(settings)


def _metrics_note(settings: Settings) -> str:
    if not settings.metrics_port:
        return ""
    ports = _metrics_ports(settings).items()
    return " (" + ", ".join(f"{name} :{port}/metrics" for name, port in ports) + ")"


def forget_worker_state(settings: Settings) -> None:
    """Drop the worker's local table stores, which belong to a broker that is gone.

    A memory broker starts empty, so the remembered event ids on disk name offsets of a
    log that no longer exists; the profiles come back from PostgreSQL. Without an
    instance, that is every worker's stores (call it before any worker runs).
    """
    shutil.rmtree(settings.worker_data_dir, ignore_errors=True)


async def sign_in_link(settings: Settings, api_key: str) -> str:
    """A link that signs a browser into the dashboard with ``api_key``, once."""
    pool = await connect_pool(settings.database_url, max_size=1)
    try:
        token = await dashboard.create_sign_in_token(pool, keys.hash_key(api_key))
    finally:
        await pool.close()
    api = f"http://{settings.gateway_host}:{settings.gateway_port}"
    return f"{api}/dashboard/sign-in?token={token}"


def banner(settings: Settings, api_key: str, dashboard_link: str, *, embedded_broker: bool) -> str:
    """What a new user needs to start sending events."""
    api = f"http://{settings.gateway_host}:{settings.gateway_port}"
    broker_note = (
        " (embedded tansu, memory only: a broker crash loses what it holds unconsumed)"
        if embedded_broker
        else ""
    )
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
            f"  Dashboard   {dashboard_link}   (signs in once; then sign in with the key)",
            f"  Kafka       {settings.kafka_bootstrap_servers}{broker_note}",
            f"  PostgreSQL  {redact(settings.database_url)}",
            f"  Metrics     {api}/metrics{_metrics_note(settings)}",
            "",
            "Send events:",
            f"  curl -X POST {api}/api/webhook/events -H 'Authorization: Bearer {api_key}' \\",
            f"       -H 'Content-Type: application/json' -d '{example}'",
            "See the profile:",
            f"  curl -H 'Authorization: Bearer {api_key}' {api}/api/customers/external/user_001",
            "",
            "Ctrl-C drains and stops everything; the data stays in "
            + str(settings.data_dir.resolve()),
            "",
        ]
    )
