"""The reply path of the commands the API waits for: the projecting commit wakes the waiter.

The gateway puts a command (an offer request, a status change) on Kafka; its owner
decides and publishes the outcome; the sink projects it. The sink's transaction also
sends ``NOTIFY proffer_replies`` with a key per outcome it wrote (PostgreSQL delivers it
only once the transaction commits), and every gateway ``LISTEN``s: a waiting request
wakes when its outcome can be read, so what the answer says, a following GET reads.
No polling: a request reads PostgreSQL once before it waits and once per wake-up.

Keys name what became readable: :func:`decision_key`, :func:`command_key`,
:func:`offer_key`, :func:`config_version_key`, :func:`catalog_definition_key` (a catalog
command's outcome is a :func:`command_key`), :func:`decision_made_key`,
:func:`fulfillment_key`. Two more kinds say what was stored, for the dashboard's live
feed and rates (:meth:`ReplyListener.tap`): :func:`feed_key` (an offer event) and
:func:`events_key` (a tenant's events of a batch). A key may wake a request of another
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
OUTCOME_BYTES = 2_000
"""Most bytes of a key with its outcome: larger outcomes are read from PostgreSQL."""
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


def decision_made_key(decision_id: str) -> str:
    """Readable when a decision (``decision.made``) is projected."""
    return f"m:{decision_id}"


def fulfillment_key(fulfillment_id: str) -> str:
    """Readable when a change of a fulfilment is projected."""
    return f"g:{fulfillment_id}"


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


Notice = str | tuple[str, str]
"""What a projection's commit makes readable: a reply key, or a key with the outcome
itself (one line of JSON), which a waiter takes without reading PostgreSQL."""


def _line(notice: Notice) -> str:
    """A notice as one line of a notification: ``key`` or ``key<TAB>outcome``; an outcome
    too large to travel (or not on one line) leaves the key alone, to be read."""
    if isinstance(notice, str):
        return notice
    key, outcome = notice
    line = f"{key}\t{outcome}"
    if len(line.encode()) > OUTCOME_BYTES or "\n" in outcome:
        return key
    return line


def payloads(notices: Iterable[Notice]) -> list[str]:
    """The notices as newline-separated notification payloads, each under
    :data:`PAYLOAD_BYTES`."""
    chunks: list[str] = []
    chunk: list[str] = []
    size = 0
    for key in map(_line, notices):
        if chunk and size + len(key.encode()) + 1 > PAYLOAD_BYTES:
            chunks.append("\n".join(chunk))
            chunk, size = [], 0
        chunk.append(key)
        size += len(key.encode()) + 1
    if chunk:
        chunks.append("\n".join(chunk))
    return chunks


async def notify(conn: asyncpg.Connection, notices: Iterable[Notice]) -> None:
    """Send the notices to every listener when the caller's transaction commits (one
    round trip)."""
    chunks = payloads(notices)
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
        self._waiting: dict[str, set[Reply]] = defaultdict(set)
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
        reply = Reply()
        for key in keys:
            self._waiting[key].add(reply)
        try:
            yield reply
        finally:
            for key in keys:
                waiters = self._waiting[key]
                waiters.discard(reply)
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
        lines = [line.partition("\t") for line in payload.split("\n")]
        if self._taps:
            keys = [key for key, _, _ in lines]
            for tap in self._taps:
                tap(keys)
        waiting = self._waiting
        if not waiting:
            return
        for key, _, outcome in lines:
            for reply in waiting.get(key, ()):
                reply.notified(outcome or None)

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
                for reply in waiters:
                    reply.notified(None)  # a reply may have come while nobody listened
            return


class Reply:
    """One request's interest in its outcome, registered by :meth:`ReplyListener.expect`."""

    def __init__(self) -> None:
        self._woken = asyncio.Event()
        self._outcomes: list[str] = []

    def notified(self, outcome: str | None) -> None:
        """An expected key was notified, with its outcome when it travelled along."""
        if outcome is not None:
            self._outcomes.append(outcome)
        self._woken.set()

    async def read(
        self,
        find: Callable[[], Awaitable[T | None]],
        deadline: float,
        *,
        look_first: bool = True,
        take: Callable[[str], T | None] | None = None,
    ) -> T | None:
        """Read with ``find`` now (unless ``look_first`` is False: the outcome of a
        command sent after :meth:`ReplyListener.expect` cannot be there before its key is
        notified) and after each notification of an expected key, until it reads
        something; None if ``deadline`` (monotonic) passes first. With ``take``, an
        outcome that came with the notification is taken (``take`` returns None for one
        that is not the caller's) instead of reading PostgreSQL."""
        looking = look_first
        while True:
            if looking:
                self._woken.clear()
                found = self._taken(take) if take is not None else None
                if found is None:
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

    def _taken(self, take: Callable[[str], T | None]) -> T | None:
        outcomes, self._outcomes = self._outcomes, []
        for outcome in outcomes:
            found = take(outcome)
            if found is not None:
                return found
        return None
