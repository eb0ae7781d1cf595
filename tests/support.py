"""Helpers the tests share: processes started as a user would, polling, DSNs."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

from proffer_stream.local import port_is_open
from proffer_stream.settings import Settings

T = TypeVar("T")


def database_dsn(server_dsn: str, database: str) -> str:
    """``server_dsn`` pointed at another database on the same server."""
    parts = urlsplit(server_dsn)
    return urlunsplit(parts._replace(path=f"/{database}"))


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
    """``proffer-stream`` sub-commands run as child processes, logs kept per process."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self._starts = 0

    def start(self, command: str, settings: Settings, name: str | None = None) -> str:
        """Start ``proffer-stream <command>``; return the name it is known by."""
        name = name or command
        self._starts += 1
        log_path = self.log_dir / f"{self._starts:02d}-{name}.log"
        env = {**os.environ, **settings_env(settings)}
        self.running[name] = subprocess.Popen(
            [sys.executable, "-m", "proffer_stream", command],
            env=env,
            stdout=open(log_path, "wb"),
            stderr=subprocess.STDOUT,
        )
        return name

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
        for name, process in self.running.items():
            if process.poll() is not None:
                raise AssertionError(f"{name} exited with {process.returncode}:\n{self.logs()}")

    def kill(self, name: str) -> None:
        """SIGKILL, as a crash would."""
        process = self.running.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait()

    def stop(self, name: str, timeout: float = 30.0) -> int:
        """SIGTERM and wait; return the exit code."""
        process = self.running.pop(name)
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise AssertionError(f"{name} did not stop on SIGTERM in {timeout}s") from None

    def stop_all(self) -> None:
        """SIGTERM every running process; SIGKILL what has not stopped within 20 s."""
        for process in self.running.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.running.values():
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.running.clear()

    def logs(self, tail: int = 60) -> str:
        """The last lines of every log, for failure messages."""
        parts = []
        for path in sorted(self.log_dir.glob("*.log")):
            lines = path.read_text(errors="replace").splitlines()[-tail:]
            parts.append(f"--- {path.name}\n" + "\n".join(lines))
        return "\n".join(parts)
