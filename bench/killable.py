"""The stack the kill benches kill: an embedded broker and PostgreSQL, then a worker and
a sink started by a supervisor (as `proffer-stream up` does), for one tenant with a key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from proffer_stream.core.settings import Settings
from proffer_stream.db import keys
from proffer_stream.local.embedded import EmbeddedBroker, EmbeddedPostgres, free_port
from proffer_stream.local.stack import prepare_database_and_topics
from proffer_stream.local.supervisor import Supervisor

TENANT = "acme"


@dataclass
class KillableStack:
    """What a trial drives: the settings, the processes' environment, their supervisor
    (to kill and start them) and a small pool to count with."""

    settings: Settings
    env: dict[str, str]
    supervisor: Supervisor
    pool: asyncpg.Pool


@asynccontextmanager
async def killable_stack(workdir: Path, **settings: Any) -> AsyncIterator[KillableStack]:
    """Start it all in ``workdir`` (``settings``: Settings fields, also given to the
    processes), yield it with the worker and the sink running, and stop it all."""
    broker = EmbeddedBroker(free_port(), workdir / "broker.log")
    postgres = EmbeddedPostgres(workdir / "postgres")
    supervisor = Supervisor(workdir / "logs")
    try:
        chosen = Settings(
            kafka_bootstrap_servers=broker.start(),
            database_url=postgres.start(),
            data_dir=workdir / "data",
            log_level="WARNING",
            **settings,
        )
        env = {
            "PROFFER_KAFKA_BOOTSTRAP_SERVERS": chosen.kafka_bootstrap_servers,
            "PROFFER_DATABASE_URL": chosen.database_url,
            "PROFFER_DATA_DIR": str(chosen.data_dir),
            "PROFFER_LOG_LEVEL": "WARNING",
            **{f"PROFFER_{name.upper()}": str(value) for name, value in settings.items()},
        }
        await prepare_database_and_topics(chosen)
        pool = await asyncpg.create_pool(chosen.database_url, min_size=1, max_size=2)
        try:
            await keys.create_key(pool, TENANT, "bench")  # a keyless tenant's are refused
            for name in ("worker", "sink"):
                supervisor.start(name, env)
            yield KillableStack(chosen, env, supervisor, pool)
        finally:
            await pool.close()
    finally:
        supervisor.stop_all()
        broker.stop()
        postgres.stop()
