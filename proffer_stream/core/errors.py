"""The exceptions of Proffer Stream: one base, small named subclasses."""

from __future__ import annotations

from typing import Literal

DeadLetterReason = Literal[
    "invalid_json",
    "invalid_message",
    "wrong_key",
    "too_large",
    "too_many_events",
    "unknown_tenant",
    "processing_error",
]


class ProfferError(Exception):
    """Base of every error Proffer Stream raises on purpose."""


class BadRecord(ProfferError):
    """A record that cannot be applied; it belongs on the dead-letter topic."""

    def __init__(self, reason: DeadLetterReason, error: str) -> None:
        super().__init__(f"{reason}: {error}")
        self.reason: DeadLetterReason = reason
        self.error = error


class Unavailable(ProfferError, ConnectionError):
    """A server we depend on (Kafka, PostgreSQL) cannot be reached."""


class SchemaBehind(ProfferError):
    """The database has migrations that are not applied yet."""

    def __init__(self, pending: list[str]) -> None:
        super().__init__(
            "the database schema is behind (not applied: "
            + ", ".join(pending)
            + "); run `proffer-stream migrate` first"
        )
        self.pending = pending


class UnsupportedFaust(ProfferError):
    """The installed faust-streaming is not the version the worker's Faust seams copy."""

    def __init__(self, installed: str, pinned: str) -> None:
        super().__init__(
            f"faust-streaming {installed} is installed, but the worker overrides private"
            f" methods of faust-streaming {pinned} (proffer_stream/worker/faust_seams):"
            f" install faust-streaming=={pinned}, or port the seams to {installed} (run"
            " tests/integration/worker) and change the pin in pyproject.toml and"
            " faust_seams/version.py together"
        )
        self.installed = installed
        self.pinned = pinned
