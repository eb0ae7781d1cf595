"""One process supervisor for `up`, the tests and bench: start, watch, restart, stop.

Children run ``python -m proffer_stream <command>`` in a session of their own, so a
Ctrl-C in the terminal reaches only the supervisor, which then stops them in order.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from proffer_stream.core.errors import ProfferError
from proffer_stream.core.retry import Backoff

log = logging.getLogger(__name__)


class GaveUp(ProfferError):
    """A child kept dying: more restarts than the policy allows in its window."""


@dataclass
class RestartPolicy:
    """Restart a dead child after a backoff; give up after ``max_restarts`` in ``window``."""

    max_restarts: int = 5
    window_seconds: float = 60.0
    first_backoff: float = 0.5
    max_backoff: float = 10.0

    def backoff(self, recent: int) -> float:
        """The wait before restarting a child that died ``recent`` times in the window."""
        return Backoff(self.first_backoff, self.max_backoff).delay(max(recent, 1))


@dataclass
class Child:
    """A supervised process and its restart history."""

    name: str
    command: str
    env: dict[str, str]
    log_path: Path | None
    process: subprocess.Popen[bytes]
    restarts: list[float] = field(default_factory=list)
    restart_at: float | None = None


class Supervisor:
    """Children started as a user would; restarted with backoff when a policy is given."""

    def __init__(self, log_dir: Path | None = None, restart: RestartPolicy | None = None) -> None:
        self.log_dir = log_dir
        self.restart = restart
        self.children: dict[str, Child] = {}
        self._starts = 0
        if log_dir is not None:
            log_dir.mkdir(parents=True, exist_ok=True)

    def start(self, command: str, env: dict[str, str], name: str | None = None) -> Child:
        """Start ``proffer-stream <command>`` with ``env`` added to this environment."""
        name = name or command
        self._starts += 1
        log_path = self.log_dir / f"{self._starts:02d}-{name}.log" if self.log_dir else None
        child = Child(name, command, env, log_path, self._spawn(command, env, log_path))
        self.children[name] = child
        log.info("started %s (pid %d)", name, child.process.pid)
        return child

    def pid(self, name: str) -> int:
        return self.children[name].process.pid

    def dead(self) -> list[Child]:
        """Children that exited and are not waiting for a restart."""
        return [
            c for c in self.children.values() if c.process.poll() is not None and not c.restart_at
        ]

    def watch(self) -> None:
        """Restart what died (after its backoff); raise :class:`GaveUp` when one keeps dying.

        Without a restart policy, a dead child is an error at once.
        """
        now = time.monotonic()
        for child in self.children.values():
            if child.restart_at is not None:
                if now >= child.restart_at:
                    self._respawn(child)
                continue
            code = child.process.poll()
            if code is None:
                continue
            if self.restart is None:
                raise GaveUp(f"{child.name} exited with code {code}")
            child.restarts = [t for t in child.restarts if now - t < self.restart.window_seconds]
            if len(child.restarts) >= self.restart.max_restarts:
                raise GaveUp(
                    f"{child.name} exited with code {code} and died {len(child.restarts)} times"
                    f" in {self.restart.window_seconds:.0f}s; giving up"
                )
            child.restarts.append(now)
            delay = self.restart.backoff(len(child.restarts))
            child.restart_at = now + delay
            log.error("%s exited with code %s; restarting in %.1fs", child.name, code, delay)

    def respawn(
        self, name: str, timeout: float = 10.0, before: Callable[[], None] | None = None
    ) -> None:
        """Stop a child (SIGTERM, SIGKILL after ``timeout``), run ``before``, start it again."""
        child = self.children[name]
        self._terminate([child], timeout)
        if before is not None:
            before()
        self._respawn(child)

    def halt(self, name: str, timeout: float = 10.0, *, at_once: bool = False) -> None:
        """Stop a child and keep it for :meth:`respawn` (before the next :meth:`watch`,
        which would take it for dead): SIGTERM (SIGKILL after ``timeout``), or SIGKILL
        ``at_once``."""
        child = self.children[name]
        if at_once and child.process.poll() is None:
            child.process.kill()
        self._terminate([child], timeout)
        child.restart_at = None

    def kill(self, name: str) -> None:
        """SIGKILL, as a crash would; the child is no longer supervised."""
        child = self.children.pop(name)
        child.process.send_signal(signal.SIGKILL)
        child.process.wait()

    def stop(self, name: str, timeout: float = 30.0) -> int:
        """SIGTERM and wait; return the exit code (SIGKILL after ``timeout``, then raise)."""
        child = self.children.pop(name)
        child.process.send_signal(signal.SIGTERM)
        try:
            return child.process.wait(timeout)
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()
            raise TimeoutError(f"{name} did not stop on SIGTERM in {timeout:.0f}s") from None

    def stop_all(self, order: Iterable[str] = (), timeout: float = 20.0) -> None:
        """Stop the children named in ``order`` one after another, then the rest together."""
        for name in order:
            if name in self.children:
                self._terminate([self.children.pop(name)], timeout)
        self._terminate(list(self.children.values()), timeout)
        self.children.clear()

    def logs(self, tail: int = 60) -> str:
        """The last lines of every log, for failure messages."""
        if self.log_dir is None:
            return ""
        parts = []
        for path in sorted(self.log_dir.glob("*.log")):
            lines = path.read_text(errors="replace").splitlines()[-tail:]
            parts.append(f"--- {path.name}\n" + "\n".join(lines))
        return "\n".join(parts)

    def _respawn(self, child: Child) -> None:
        child.process = self._spawn(child.command, child.env, child.log_path)
        child.restart_at = None
        log.warning("restarted %s (pid %d)", child.name, child.process.pid)

    @staticmethod
    def _spawn(command: str, env: dict[str, str], log_path: Path | None) -> subprocess.Popen[bytes]:
        output: IO[bytes] | None = open(log_path, "ab") if log_path else None
        try:
            return subprocess.Popen(
                [sys.executable, "-m", "proffer_stream", command],
                env={**os.environ, **env},
                stdout=output,
                stderr=subprocess.STDOUT if output else None,
                start_new_session=True,
            )
        finally:
            if output is not None:
                output.close()

    @staticmethod
    def _terminate(children: list[Child], timeout: float) -> None:
        for child in children:
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.process.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %.0fs; killing it", child.name, timeout)
                child.process.kill()
                child.process.wait()
