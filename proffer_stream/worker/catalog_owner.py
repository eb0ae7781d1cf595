"""The catalog owner: the one writer of each catalog offer's definition, stock and limits.

Definition changes and members' grants, uses, likes, seen and clicks arrive on
``proffer.catalog-commands`` keyed by tenant and catalog offer (or collection), so one
worker decides each offer's commands, in order, with the pure decisions of
:mod:`proffer_stream.catalog.limits`. Its state is the Faust table ``catalog``, in the
partition of the commands' records: ``o\\0<key>`` the offer (definition, counts, the
offset of the last command applied), ``m\\0<key>\\0<member>`` each member's standing.
A new definition goes to ``proffer.catalog``, every decision to
``proffer.catalog-events``, both keyed like the command; the decision on the grant of a
generated offer (:mod:`proffer_stream.catalog.generated`) is also answered to the
offers agent that holds the offer, on ``proffer.offer-requests``.

Idempotent by command id: each member record keeps the events decided for the member
lately (:data:`DECIDED_FOR`, at most :data:`KEPT_DECIDED`; an offer record those of its
definition commands), in the same record as the state they changed, so a command seen
again (a redelivery after a crash, a client sending it again) publishes the event it
had and changes nothing. Kept per member rather than in a table of their own with a
TTL: a decision and the state it made are one record, so no crash can keep one and
lose the other, and a record's events are dropped as it is written, without a TTL's
compaction or a second changelog.

A crash in a checkpoint may deliver part of a partition's changelog records (a
prefix: one producer, one partition). The offer's record is written after its members'
(:meth:`TableTransaction.set` moves a key written again to the end), so it marks them
complete: a member record newer than its offer's (its offset is higher) comes from a
checkpoint that did not finish, and the member's record as of the checkpoint before
(``before``) is taken instead; the records after the committed offset are then decided
again, identically (time is each command's ``issued_at``).

After the broker lost the changelog (the embedded broker keeps nothing across
restarts), a command that finds no offer reads it from PostgreSQL (all but a create),
and a member of an offer restored so is read from there too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Protocol, TypeVar

import asyncpg
from faust.types import EventT
from pydantic import Field, TypeAdapter, ValidationError

from proffer_stream.catalog.generated import answer_to_grant
from proffer_stream.catalog.limits import (
    MemberState,
    OfferState,
    decide_definition,
    decide_member,
)
from proffer_stream.catalog.models import (
    CatalogEvent,
    Definition,
    DefinitionCommand,
    MemberCommand,
    catalog_key,
)
from proffer_stream.catalog.periods import UnknownTimeZone, zone
from proffer_stream.core import metrics
from proffer_stream.core.errors import BadRecord
from proffer_stream.core.retry import retry_transient
from proffer_stream.core.types import StrictModel
from proffer_stream.db.catalog_state import load_member_state, load_offer_state
from proffer_stream.db.pool import TRANSIENT_ERRORS, connect_pool
from proffer_stream.ingest.records import describe_errors
from proffer_stream.kafka.deadletter import SourceRecord
from proffer_stream.offers.models import OfferCommand
from proffer_stream.worker.deadletters import DeadLetters, source_record
from proffer_stream.worker.state import TableTransaction

log = logging.getLogger(__name__)

T = TypeVar("T")

STAGE = "catalog-owner"
ISSUED_AHEAD = timedelta(minutes=5)
"""How far a command's ``issued_at`` may be after its record's timestamp (clock skew
between the gateway that issued it and the producer that wrote it: the same process)."""
DECIDED_FOR = timedelta(hours=1)
"""How long a member's decided events are kept to answer a command sent again."""
KEPT_DECIDED = 100
"""Most decided events a record keeps (a member sending more within the hour: the
oldest are dropped)."""

CatalogCommand = Annotated[DefinitionCommand | MemberCommand, Field(discriminator="action")]
_COMMAND: TypeAdapter[DefinitionCommand | MemberCommand] = TypeAdapter(CatalogCommand)


class Decided(StrictModel):
    """An event decided for a command, and the offset of the record it came in."""

    offset: int
    event: CatalogEvent


class OfferRecord(StrictModel):
    """What the table holds of a catalog offer or collection."""

    state: OfferState = Field(default_factory=OfferState)
    offset: int = Field(-1, description="Of the last command applied; -1: none yet.")
    restored: bool = Field(False, description="Read from PostgreSQL: so are its members.")
    decided: list[Decided] = Field(default_factory=list, description="Definition commands'.")


class MemberEntry(StrictModel):
    """A member's standing with an offer, and the events decided for them lately."""

    state: MemberState = Field(default_factory=MemberState)
    offset: int = -1
    decided: list[Decided] = Field(default_factory=list)


class MemberRecord(StrictModel):
    """What the table holds of a member: now, and as of the checkpoint before."""

    now: MemberEntry
    before: MemberEntry | None = None


def offer_key(key: bytes) -> bytes:
    return b"o\x00" + key


def member_key(key: bytes, external_customer_id: str) -> bytes:
    return b"m\x00" + key + b"\x00" + external_customer_id.encode()


def encode(record: StrictModel) -> bytes:
    """A record as the table stores it."""
    return record.model_dump_json().encode()


class CatalogStore:
    """The ``catalog`` table, read and written through its transaction, and PostgreSQL
    for what a broker that lost the changelog took with it."""

    def __init__(self, state: TableTransaction[StrictModel], database_url: str = "") -> None:
        self.state = state
        self.database_url = database_url
        self._pool: asyncpg.Pool | None = None
        self._connecting = asyncio.Lock()

    def offer(self, partition: int, key: bytes) -> OfferRecord | None:
        """The offer's record (with the writes held), if the table has it."""
        held = self.state.held(partition, key)
        if held is not None:
            assert isinstance(held, OfferRecord)
            return held
        stored = self.state.stored(partition, key)
        return None if stored is None else OfferRecord.model_validate_json(stored)

    def member(
        self, partition: int, key: bytes, offer_offset: int
    ) -> tuple[MemberEntry | None, MemberEntry | None]:
        """The member's entry now, and as of the last checkpoint (for :meth:`save_member`).

        ``offer_offset``: of the offer's record, which a complete member record never
        passes (see the module's docstring)."""
        held = self.state.held(partition, key)
        if held is not None:
            assert isinstance(held, MemberRecord)
            return held.now, held.before
        stored = self.state.stored(partition, key)
        if stored is None:
            return None, None
        record = MemberRecord.model_validate_json(stored)
        checkpointed = record.now if record.now.offset <= offer_offset else record.before
        return checkpointed, checkpointed

    def save_member(
        self, partition: int, key: bytes, entry: MemberEntry, before: MemberEntry | None
    ) -> None:
        self.state.set(partition, key, MemberRecord(now=entry, before=before))

    def save_offer(self, partition: int, key: bytes, record: OfferRecord) -> None:
        """Hold the offer's record, after its members' (it marks them complete)."""
        self.state.set(partition, key, record)

    async def restore_offer(self, tenant_id: str, target: str, item_id: int) -> OfferRecord:
        """The offer as PostgreSQL has it (marked restored), else a new one."""
        if not self.database_url:
            return OfferRecord()

        async def query() -> OfferState | None:
            return await load_offer_state(await self._connected(), tenant_id, target, item_id)

        state = await retry_transient(query, transient=TRANSIENT_ERRORS, what="PostgreSQL")
        if state is None:
            return OfferRecord()
        log.info("restored catalog %s %s:%d from PostgreSQL", target, tenant_id, item_id)
        return OfferRecord(state=state, restored=True)

    async def restore_member(self, command: MemberCommand) -> MemberEntry | None:
        """The member of a restored offer as PostgreSQL has them, if it does."""
        if not self.database_url:
            return None

        async def query() -> MemberEntry | None:
            found = await load_member_state(
                await self._connected(),
                command.tenant_id,
                command.offer_id,
                command.external_customer_id,
                command.issued_at,
                DECIDED_FOR,
            )
            if found is None:
                return None
            decided = [Decided(offset=-1, event=e) for e in found.decided]
            return MemberEntry(state=found.state, decided=decided[-KEPT_DECIDED:])

        return await retry_transient(query, transient=TRANSIENT_ERRORS, what="PostgreSQL")

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()

    async def _connected(self) -> asyncpg.Pool:
        async with self._connecting:
            if self._pool is None:
                self._pool = await connect_pool(self.database_url, max_size=2)
            return self._pool


class CatalogOutbox(Protocol):
    """Where the owner's decisions go, keyed like the command."""

    async def definition(self, key: bytes, definition: Definition) -> None:
        """A new version, to ``proffer.catalog``."""

    async def event(self, key: bytes, event: CatalogEvent) -> None:
        """A decision, to ``proffer.catalog-events``."""

    async def answer(self, command: OfferCommand) -> None:
        """The answer to a generated offer's grant, to ``proffer.offer-requests`` (keyed
        like the customer: to the offers agent that holds the offer)."""


class CatalogOwner:
    """Decides the catalog commands of the partitions this worker owns, one at a time."""

    def __init__(
        self, store: CatalogStore, outbox: CatalogOutbox, dead_letters: DeadLetters
    ) -> None:
        self.store = store
        self.outbox = outbox
        self.dead_letters = dead_letters

    async def process(self, batch: Sequence[EventT[bytes]]) -> None:
        """Decide each command in order; a record that cannot be read or decided is
        dead-lettered and the rest go on. A decision that cannot be published raises."""
        for event in batch:
            source = source_record(event.message)
            try:
                command = read_command(source.key, source.value, source.timestamp_ms)
            except BadRecord as error:
                await self.dead_letters.send(source, error)
                continue
            await self.decide(source, command)

    async def decide(
        self, source: SourceRecord, command: DefinitionCommand | MemberCommand
    ) -> None:
        """Decide ``command`` (once: seen again, it publishes the event it had)."""
        try:
            if isinstance(command, MemberCommand):
                await self._member(source.partition, source.offset, command)
            else:
                await self._definition(source.partition, source.offset, command)
        except _Unreadable as error:  # this record only; no state was changed
            await self.dead_letters.send(source, BadRecord("processing_error", repr(error.cause)))

    async def _member(self, partition: int, offset: int, command: MemberCommand) -> None:
        key = catalog_key(command.tenant_id, command.offer_id)
        record = await self._offer(partition, key, command.tenant_id, "offer", command.offer_id)
        mkey = member_key(key, command.external_customer_id)
        entry, before = self.store.member(partition, mkey, record.offset)
        if entry is None and record.restored:
            entry = await _readable(self.store.restore_member(command))
        entry = entry or MemberEntry()
        seen = _find(entry.decided, command.command_id)
        if seen is not None:
            await self.outbox.event(key, seen.event)
            await self._answer(command, seen.event)
            return
        if _applied(record, offset, command.command_id):
            return
        try:
            state, member, event = decide_member(record.state, entry.state, command)
            decided = _kept([*entry.decided, Decided(offset=offset, event=event)])
        except Exception as exc:  # a bug in a decision: this record only
            raise _Unreadable(exc) from exc
        self.store.save_member(
            partition, mkey, MemberEntry(state=member, offset=offset, decided=decided), before
        )
        self.store.save_offer(
            partition, offer_key(key), record.model_copy(update={"state": state, "offset": offset})
        )
        await self._publish(key, event)
        await self._answer(command, event)

    async def _definition(self, partition: int, offset: int, command: DefinitionCommand) -> None:
        key = command.key
        if command.action == "create":
            record = self.store.offer(partition, offer_key(key)) or OfferRecord()
        else:
            record = await self._offer(
                partition, key, command.tenant_id, command.target, command.id
            )
        seen = _find(record.decided, command.command_id)
        if seen is not None:
            current = record.state.definition(command.target)
            if current is not None and current.command_id == command.command_id:
                await self.outbox.definition(key, current)  # never an older version
            await self.outbox.event(key, seen.event)
            return
        if _applied(record, offset, command.command_id):
            return
        try:
            state, event = decide_definition(record.state, command)
            decided = _kept([*record.decided, Decided(offset=offset, event=event)])
        except Exception as exc:  # a bug in a decision: this record only
            raise _Unreadable(exc) from exc
        self.store.save_offer(
            partition,
            offer_key(key),
            record.model_copy(update={"state": state, "offset": offset, "decided": decided}),
        )
        definition = state.definition(command.target)
        if event.kind == "defined" and definition is not None:
            await self.outbox.definition(key, definition)
        await self._publish(key, event)

    async def _offer(
        self, partition: int, key: bytes, tenant_id: str, target: str, item_id: int
    ) -> OfferRecord:
        """The offer's record: the table's, else PostgreSQL's, else a new one."""
        record = self.store.offer(partition, offer_key(key))
        if record is None:
            record = await _readable(self.store.restore_offer(tenant_id, target, item_id))
        return record

    async def _answer(self, command: MemberCommand, event: CatalogEvent) -> None:
        """Tell the offers agent holding a generated offer whether its grant was made
        (again for a command seen again: the agent applies an answer once)."""
        answer = answer_to_grant(command, event)
        if answer is not None:
            await self.outbox.answer(answer)

    async def _publish(self, key: bytes, event: CatalogEvent) -> None:
        await self.outbox.event(key, event)
        metrics.CATALOG_EVENTS.labels(event.kind, event.reason or "").inc()


def read_command(
    key: bytes | None, value: bytes | None, timestamp_ms: int | None = None
) -> DefinitionCommand | MemberCommand:
    """A record of ``proffer.catalog-commands`` (written at ``timestamp_ms``), or
    :class:`BadRecord`.

    A command issued more than :data:`ISSUED_AHEAD` after its record was written is
    refused: the owner decides at ``issued_at`` and never goes back in time, so one
    command from far ahead would release every grant's stock at once. The record's
    timestamp, not the clock, so that a replay refuses it too.
    """
    try:
        command = _COMMAND.validate_json(value or b"")
    except ValidationError as exc:
        invalid_json = any(e["type"] == "json_invalid" for e in exc.errors())
        raise BadRecord(
            "invalid_json" if invalid_json else "invalid_message", describe_errors(exc.errors())
        ) from None
    if isinstance(command, MemberCommand):
        expected = catalog_key(command.tenant_id, command.offer_id)
        try:
            zone(command.timezone)
        except UnknownTimeZone as exc:
            raise BadRecord("invalid_message", f"timezone: {exc}") from None
    else:
        expected = command.key
    if timestamp_ms is not None and timestamp_ms > 0:  # else not known: nothing to check
        written = datetime.fromtimestamp(timestamp_ms / 1000, UTC)
        if command.issued_at > written + ISSUED_AHEAD:
            raise BadRecord(
                "invalid_message",
                f"issued_at: {command.issued_at.isoformat()} is after the record was"
                f" written ({written.isoformat()}) by more than {ISSUED_AHEAD}",
            )
    if key != expected:
        raise BadRecord(
            "wrong_key",
            f"key is {key!r}; it must be {expected!r}"
            " (<tenant_id>\\0<catalog|collection|integration>\\0<id>)"
            " so that each catalog offer has one owner",
        )
    return command


class _Unreadable(Exception):
    """A command whose state cannot be read or decided (not an outage, which is waited
    out): dead-lettered with its cause."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(repr(cause))
        self.cause = cause


async def _readable(restoring: Awaitable[T]) -> T:
    """What a read from PostgreSQL returns; an error that is not an outage (those are
    waited out) fails only the command that asked, as :class:`_Unreadable`."""
    try:
        return await restoring
    except Exception as exc:
        raise _Unreadable(exc) from exc


def _find(decided: list[Decided], command_id: str) -> Decided | None:
    return next((d for d in reversed(decided) if d.event.event_id == command_id), None)


def _applied(record: OfferRecord, offset: int, command_id: str) -> bool:
    """Whether the record at ``offset`` was applied already though its event is no longer
    kept (a member who sent more than :data:`KEPT_DECIDED` commands between two commits):
    it was published then, and must not be applied twice."""
    if offset > record.offset:
        return False
    log.warning(
        "catalog command %s at offset %d was applied (the offer is at %d) and its event is"
        " no longer kept: not published again",
        command_id,
        offset,
        record.offset,
    )
    return True


def _kept(decided: list[Decided]) -> list[Decided]:
    """The decided events worth keeping: of the last :data:`DECIDED_FOR`, at most
    :data:`KEPT_DECIDED`."""
    since = decided[-1].event.at - DECIDED_FOR
    return [d for d in decided[-KEPT_DECIDED:] if d.event.at >= since]
