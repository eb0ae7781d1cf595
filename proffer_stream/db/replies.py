"""The reply path of the commands the API waits for: the projecting commit wakes the waiter.

The gateway puts a command (an offer request, a status change) on Kafka; its owner
decides and publishes the outcome; the sink projects it. The sink's transaction also
sends ``NOTIFY proffer_replies`` with a key per outcome it wrote (PostgreSQL delivers it
only once the transaction commits), and every gateway ``LISTEN``s: a waiting request
wakes when its outcome can be read, so what the answer says, a following GET reads.
No polling: a request reads PostgreSQL once before it waits and once per wake-up.

Keys name what became readable: :func:`decision_key`, :func:`command_key`,
:func:`offer_key`, :func:`config_version_key`, :func:`catalog_definition_key` (a catalog
command's outcome is a :func:`command_key`). Two more kinds say what was stored, for the
dashboard's live feed and rates (:meth:`ReplyListener.tap`): :func:`feed_key` (an offer
event) and :func:`events_key` (a tenant's events of a batch). A key may wake a request of another
tenant with the same id (ids are random or hashed, so hardly ever); it only reads
again, scoped to its own tenant.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import TypeVar

import asyncpg

from proffer_stream.db.pool import TRANSIENT_ERRORS, redact

log = logging.getLogger(__name__)

CHANNEL = "proffer_replies"
PAYLOAD_BYTES = 7_000
"""Most bytes of keys in one notification (PostgreSQL's limit is 8,000)."""
RECONNECT_SECONDS = (0.1, 5.0)
"""First and longest wait between tries to listen again after the connection was lost."""

T = TypeVar("T")


def decision_key(request_id: str) -> str:
    """Readable when the offer request's decision (and its offer, if any) is projected."""
    return f"r:{request_id}"


def command_key(command_id: str) -> str:
    """Readable when a command's outcome is projected."""
    return f"c:{command_id}"


def offer_key(offer_id: int) -> str:
    """Readable when a new version of the offer is projected."""
    return f"o:{offer_id}"


def config_version_key(tenant_id: str, kind: str) -> str:
    """Readable when a new version of the tenant's rules or policy is projected."""
    return f"t:{kind}:{tenant_id}"


def catalog_definition_key(tenant_id: str, target: str, item_id: int) -> str:
    """Readable when a new version of a catalog offer or collection is projected."""
    return f"d:{target}:{tenant_id}:{item_id}"


FEED_PREFIX = "f:"
EVENTS_PREFIX = "n:"
FEED_TEXT = 100
"""Most characters of an offer event's cause in its feed key."""


def feed_key(
    tenant_id: str,
    event_type: str,
    offer_id: int | None,
    status: str | None,
    external_customer_id: str,
    cause: str,
) -> str:
    """An offer event stored, for the live feed: its fields as JSON (no raw newline)."""
    fields = [tenant_id, event_type, offer_id, status, external_customer_id, cause[:FEED_TEXT]]
    return FEED_PREFIX + json.dumps(fields, separators=(",", ":"))


def events_key(tenant_id: str, count: int) -> str:
    """``count`` events of the tenant stored, for the live rate."""
    return EVENTS_PREFIX + json.dumps([tenant_id, count], separators=(",", ":"))


def payloads(keys: Iterable[str]) -> list[str]:
    """The keys as newline-separated notification payloads, each under :data:`PAYLOAD_BYTES`."""
    chunks: list[str] = []
    chunk: list[str] = []
    size = 0
    for key in keys:
        if chunk and size + len(key) + 1 > PAYLOAD_BYTES:
            chunks.append("\n".join(chunk))
            chunk, size = [], 0
        chunk.append(key)
        size += len(key) + 1
    if chunk:
        chunks.append("\n".join(chunk))
    return chunks


async def notify(conn: asyncpg.Connection, keys: Iterable[str]) -> None:
    """Send the keys to every listener when the caller's transaction commits (one round trip)."""
    chunks = payloads(keys)
    if chunks:
        await conn.execute(
            "SELECT pg_notify($1, chunk) FROM unnest($2::text[]) AS chunk", CHANNEL, chunks
        )


class ReplyListener:
    """A gateway's one ``LISTEN`` connection, and the requests waiting on it.

    If the connection is lost, every waiter reads again once it listens again (a
    notification sent in between is lost to it); until then waiters wait for their
    deadline, after which the API answers 202 with where to ask.
    """

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._waiting: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._taps: list[Callable[[list[str]], None]] = []
        self._conn: asyncpg.Connection | None = None
        self._reconnecting: asyncio.Task[None] | None = None
        self._stopped = False

    async def start(self) -> None:
        """Listen; raises what :func:`asyncpg.connect` raises when PostgreSQL is unreachable."""
        self._conn = await self._listen()

    async def stop(self) -> None:
        self._stopped = True
        if self._reconnecting is not None:
            self._reconnecting.cancel()
            await asyncio.gather(self._reconnecting, return_exceptions=True)
        if self._conn is not None and not self._conn.is_closed():
            await self._conn.close()

    @property
    def listening(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    @contextlib.contextmanager
    def expect(self, *keys: str) -> Iterator[Reply]:
        """Wait for ``keys`` from now on: enter before sending the command, so that its
        outcome cannot be projected before anyone listens for it."""
        woken = asyncio.Event()
        for key in keys:
            self._waiting[key].add(woken)
        try:
            yield Reply(self, woken)
        finally:
            for key in keys:
                waiters = self._waiting[key]
                waiters.discard(woken)
                if not waiters:
                    del self._waiting[key]

    def tap(self, callback: Callable[[list[str]], None]) -> None:
        """Call ``callback`` with the keys of every notification from now on."""
        self._taps.append(callback)

    async def wait_for(
        self, key: str, find: Callable[[], Awaitable[T | None]], deadline: float
    ) -> T | None:
        """What ``find`` reads, once it reads something or ``deadline`` (monotonic) passes."""
        with self.expect(key) as reply:
            return await reply.read(find, deadline)

    async def _listen(self) -> asyncpg.Connection:
        conn = await asyncpg.connect(self.dsn, timeout=10)
        await conn.add_listener(CHANNEL, self._on_notification)
        conn.add_termination_listener(self._on_lost)
        return conn

    def _on_notification(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        keys = payload.split("\n")
        for tap in self._taps:
            tap(keys)
        waiting = self._waiting
        if not waiting:
            return
        for key in keys:
            for woken in waiting.get(key, ()):
                woken.set()

    def _on_lost(self, _conn: object) -> None:
        if not self._stopped and self._reconnecting is None:
            log.warning("lost the connection that listens for replies; listening again")
            self._reconnecting = asyncio.get_running_loop().create_task(self._listen_again())

    async def _listen_again(self) -> None:
        delay, longest = RECONNECT_SECONDS
        while not self._stopped:
            try:
                self._conn = await self._listen()
            except TRANSIENT_ERRORS as exc:
                log.debug("cannot listen at %s yet: %r", redact(self.dsn), exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, longest)
                continue
            log.warning("listening for replies again")
            self._reconnecting = None
            for waiters in self._waiting.values():
                for woken in waiters:
                    woken.set()  # a reply may have come while nobody listened
            return


class Reply:
    """One request's interest in its outcome, registered by :meth:`ReplyListener.expect`."""

    def __init__(self, listener: ReplyListener, woken: asyncio.Event) -> None:
        self._listener = listener
        self._woken = woken

    async def read(
        self,
        find: Callable[[], Awaitable[T | None]],
        deadline: float,
        *,
        look_first: bool = True,
    ) -> T | None:
        """Read with ``find`` now (unless ``look_first`` is False: the outcome of a
        command sent after :meth:`ReplyListener.expect` cannot be there before its key is
        notified) and after each notification of an expected key, until it reads
        something; None if ``deadline`` (monotonic) passes first."""
        looking = look_first
        while True:
            if looking:
                self._woken.clear()
                found = await find()
                if found is not None:
                    return found
            looking = True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                async with asyncio.timeout(remaining):
                    await self._woken.wait()
            except TimeoutError:
                return await find()
