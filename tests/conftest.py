"""Session fixtures: a Kafka broker and a PostgreSQL for the whole suite.

In order of preference: servers named in the environment
(``PROFFER_TEST_KAFKA_BOOTSTRAP_SERVERS``, ``PROFFER_TEST_DATABASE_URL``); containers from
testcontainers when ``PROFFER_TEST_CONTAINERS=1`` and a Docker engine answers; otherwise
the embedded broker and embedded PostgreSQL on free ports. Each test gets its own topic
prefix and its own database, so tests never see each other's data.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from support import Processes, isolated_settings, wait_for

from proffer_stream.core.settings import Settings
from proffer_stream.db.pool import connect_pool
from proffer_stream.local.embedded import EmbeddedBroker, EmbeddedPostgres, free_port


def _containers_wanted() -> bool:
    if os.environ.get("PROFFER_TEST_CONTAINERS") != "1":
        return False
    try:
        import docker

        docker.from_env().ping()
        return True
    except Exception:  # no engine: fall back to the embedded servers
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of the suite's broker."""
    configured = os.environ.get("PROFFER_TEST_KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield configured
        return
    if _containers_wanted():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as kafka:
            yield kafka.get_bootstrap_server()
        return
    broker = EmbeddedBroker(free_port())
    yield broker.start()
    broker.stop()


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """DSN of the suite's PostgreSQL server (its default database)."""
    configured = os.environ.get("PROFFER_TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    if _containers_wanted():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16", driver=None) as postgres:
            yield postgres.get_connection_url()
        return
    server = EmbeddedPostgres(tmp_path_factory.mktemp("pg") / "data")
    yield server.start()
    server.stop()


@pytest.fixture
async def settings(
    kafka_bootstrap: str, postgres_url: str, tmp_path: Path
) -> AsyncIterator[Settings]:
    """Settings for one test: its own topics (by prefix), database and ports; migrated."""
    yield await isolated_settings(kafka_bootstrap, postgres_url, tmp_path)


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the test's own database."""
    pool = await connect_pool(settings.database_url, max_size=4)
    yield pool
    await pool.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    if report.when == "call":
        item.stash[_CALL_FAILED] = report.failed
    return report


_CALL_FAILED = pytest.StashKey[bool]()


@pytest.fixture
def processes(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Processes]:
    """Start proffer-stream processes as a user would; all are stopped after the test.

    When the test fails, the tail of each process's log is printed with the report.
    """
    group = Processes(tmp_path / "logs")
    yield group
    group.stop_all()
    if request.node.stash.get(_CALL_FAILED, False):
        print(group.logs())


PROCESS_SUITES = ("chaos", "e2e")
"""Test folders whose tests start processes (and kill them): under pytest-xdist they run
one at a time on one worker (one xdist group), while the other workers take the rest."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if any(part in PROCESS_SUITES for part in item.path.parts[-3:-1]):
            item.add_marker(pytest.mark.xdist_group("processes"))


__all__ = ["wait_for"]
