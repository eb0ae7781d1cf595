"""The signals table: reading profiles, restoring lost ones from PostgreSQL, writing back."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg

from proffer_stream.core.identity import partition_key
from proffer_stream.core.retry import retry_transient
from proffer_stream.core.types import CustomerKey
from proffer_stream.db.customers import load_signals
from proffer_stream.db.events import counted_event_ids, uncounted_events
from proffer_stream.db.offers import rules_decided
from proffer_stream.db.pool import TRANSIENT_ERRORS, connect_pool
from proffer_stream.offers.triggers import unmark_undecided
from proffer_stream.signals.fold import new_signals, take_in
from proffer_stream.signals.models import CustomerSignals
from proffer_stream.worker.lent import Lent
from proffer_stream.worker.reroute import key_partition
from proffer_stream.worker.restore import BatchedRestore
from proffer_stream.worker.state import TableTransaction

log = logging.getLogger(__name__)


@dataclass
class Loaded:
    """Profiles read for a batch.

    ``failed``: customers whose profile could not be read, with why. ``counted_ids``:
    for profiles restored from PostgreSQL, the ids of the events they counted lately.
    """

    states: dict[CustomerKey, CustomerSignals] = field(default_factory=dict)
    failed: dict[CustomerKey, Exception] = field(default_factory=dict)
    counted_ids: dict[CustomerKey, list[str]] = field(default_factory=dict)


class ProfileStore:
    """Customer profiles in the Faust table ``signals``, keyed ``<tenant>:<external id>``.

    The profiles it saved are kept parsed (at most ``kept_parsed``, the most recently
    saved): :meth:`load` lends one out instead of reading and parsing what it stored, and
    takes it out of the cache, so that a profile changed by a batch that did not save it
    is read afresh. Only this store writes the table while its partitions stay here, so
    a kept profile is what the table holds; :meth:`forget` drops them when partitions
    move (recovery may write the table then). Parsing a profile per customer and batch
    was 7% of the worker's time at one event per record.

    Saved profiles are held, serialised, in the table's transaction until the checkpoint
    writes them (:mod:`proffer_stream.worker.state`): the worker checkpoints when it has
    caught up with its input, at most ``PROFFER_PROFILE_FLUSH_SECONDS`` after the last,
    before every offset commit and on a rebalance. A busy customer's profile is written
    once per checkpoint instead of once per batch while the worker is behind; when it
    keeps up, every batch is checkpointed. Reads (:meth:`get`, :meth:`load`) see what is
    held.
    """

    def __init__(
        self,
        state: TableTransaction[bytes],
        partitions: int,
        database_url: str,
        dedup_days: int,
        kept_parsed: int = 10_000,
    ) -> None:
        self.state = state
        self.partitions = partitions
        self.database_url = database_url
        self.dedup_days = dedup_days
        self._parsed: Lent[bytes, CustomerSignals] = Lent(kept_parsed)
        self._pool: asyncpg.Pool | None = None
        self._connecting = asyncio.Lock()
        self._saved = asyncio.Event()
        self._in_postgres = BatchedRestore(self._query_signals, "customer profiles (to read)")

    async def applied(self, key: CustomerKey, offset: int, timeout: float) -> bool:
        """Wait until the customer's profile has applied the record at ``offset`` of
        ``proffer.events`` (its ``source_offset``), at most ``timeout`` seconds; whether
        it has. Woken by every :meth:`save`."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.get(key)
            if state is not None and state.source_offset >= offset:
                return True
            saved, left = self._saved, deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                await asyncio.wait_for(saved.wait(), left)
            except TimeoutError:
                return False

    def get(self, key: CustomerKey) -> CustomerSignals | None:
        """The profile stored, if any."""
        stored = self._stored(partition_key(*key))
        return None if stored is None else CustomerSignals.model_validate_json(stored)

    async def read(self, key: CustomerKey) -> CustomerSignals | None:
        """The profile stored, else the one PostgreSQL holds, if any: for readers of the
        profile other than the signals agent (the offers agent).

        A profile restored here is not saved: the signals agent, which writes the table,
        restores it itself (:meth:`load`), with the ids of the events it counted. The
        table misses a profile PostgreSQL has when the broker lost the changelog (the
        local broker keeps nothing across restarts); the customer has sent no event
        since, and ``generate`` must still know them. An outage is waited out; an error
        that is not one is raised.
        """
        state = self.get(key)
        if state is not None or not self.database_url:
            return state
        return await self._in_postgres.get(key)

    async def load(
        self, keys: Iterable[CustomerKey], in_hand: Mapping[CustomerKey, datetime] | None = None
    ) -> Loaded:
        """Each customer's profile (from the table, else PostgreSQL, else new), for the
        caller to change and :meth:`save`. ``in_hand``: when the first event the caller
        is about to apply was received, per customer (events stored in PostgreSQL before
        it that a restored profile lacks are counted into it, see :meth:`_restore`)."""
        loaded = Loaded()
        missing = []
        for key in keys:
            state = self._take(partition_key(*key))
            if state is None:
                missing.append(key)
            else:
                loaded.states[key] = state
        restored = await self._restore(missing, in_hand or {})
        for key in missing:
            if key not in restored.failed:
                loaded.states[key] = restored.states.get(key) or new_signals(*key)
        loaded.failed, loaded.counted_ids = restored.failed, restored.counted_ids
        return loaded

    def save(self, states: Iterable[CustomerSignals]) -> None:
        """Hold profiles for the checkpoint."""
        for state in states:
            key = partition_key(state.tenant_id, state.external_id)
            value = state.model_dump_json().encode()
            self.state.set(key_partition(key, self.partitions), key, value)
            self._parsed.keep(key, state)
        self._saved.set()  # wakes those waiting in applied()
        self._saved = asyncio.Event()

    def _stored(self, key: bytes) -> bytes | None:
        partition = key_partition(key, self.partitions)
        held = self.state.held(partition, key)
        return held if held is not None else self.state.stored(partition, key)

    def _take(self, key: bytes) -> CustomerSignals | None:
        """The profile stored: the parsed one kept (it leaves the cache), else parsed."""
        kept = self._parsed.take(key)
        if kept is not None:
            return kept
        stored = self._stored(key)
        return None if stored is None else CustomerSignals.model_validate_json(stored)

    def forget(self) -> None:
        """Drop the profiles kept parsed: the partitions they came from may move (call
        when partitions are revoked; the table is the truth again)."""
        self._parsed.clear()

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()

    async def _restore(
        self, keys: list[CustomerKey], in_hand: Mapping[CustomerKey, datetime]
    ) -> Loaded:
        """Profiles missing from the table but stored in PostgreSQL, with their event ids.

        PostgreSQL only knows a profile through the changelog, so one missing from the
        table means the changelog was lost (the local broker keeps nothing across
        restarts): the stored profile is the truth, and its source offset, which
        counted records of the old log, no longer applies; the stored events' ids say
        what it counted. The events stored but received after its last update (or, for
        a customer with no stored profile, any) and before the first event in hand were
        taken by the lost broker before the worker counted them: they are counted now,
        once by id. An outage is waited out; an error that is not an outage fails only
        the customers it concerns.
        """
        if not keys or not self.database_url:
            return Loaded()
        try:
            restored = await self._query(keys, in_hand)
        except Exception:  # not transient: find the customers it concerns
            restored = await self._restore_one_by_one(keys, in_hand)
        for state in restored.states.values():
            state.source_offset = -1
        if restored.states:
            log.info("restored %d customer profiles from PostgreSQL", len(restored.states))
        return restored

    async def _restore_one_by_one(
        self, keys: list[CustomerKey], in_hand: Mapping[CustomerKey, datetime]
    ) -> Loaded:
        restored = Loaded()
        for key in keys:
            try:
                one = await self._query([key], in_hand)
            except Exception as exc:  # reported per customer, with its records
                restored.failed[key] = exc
                continue
            restored.states.update(one.states)
            restored.counted_ids.update(one.counted_ids)
        return restored

    async def _query(
        self, keys: list[CustomerKey], in_hand: Mapping[CustomerKey, datetime]
    ) -> Loaded:
        since = datetime.now(UTC) - timedelta(days=self.dedup_days)

        async def query() -> Loaded:
            pool = await self._connected()
            states = await load_signals(pool, keys)
            ids = await counted_event_ids(pool, list(states.values()), since)
            await _take_in_missed(pool, {k: in_hand[k] for k in keys if k in in_hand}, states, ids)
            await self._unmark_undecided(pool, list(states.values()))
            return Loaded(states=states, counted_ids=ids)

        return await retry_transient(query, transient=TRANSIENT_ERRORS, what="PostgreSQL")

    async def _unmark_undecided(self, pool: asyncpg.Pool, states: list[CustomerSignals]) -> None:
        """Unmark the rules these restored profiles mark as fired whose request reached no
        decision: it was lost with the broker (its topics are gone), and the cooldown it
        started would block the customer's automatic offers with nothing to show for it."""
        fired = [
            (s.tenant_id, s.customer_id, rule, at)
            for s in states
            for rule, at in s.rules_fired_at.items()
        ]
        decided: dict[tuple[str, int], set[str]] = {}
        for tenant_id, customer, rule in await rules_decided(pool, fired):
            decided.setdefault((tenant_id, customer), set()).add(rule)
        for state in states:
            unmarked = unmark_undecided(
                state, decided.get((state.tenant_id, state.customer_id), ())
            )
            if unmarked:
                log.warning(
                    "%s:%s: rules %s were marked as fired, but their requests reached no"
                    " decision (lost with the broker): unmarked",
                    state.tenant_id,
                    state.external_id,
                    ", ".join(unmarked),
                )

    async def _query_signals(self, keys: list[CustomerKey]) -> dict[CustomerKey, CustomerSignals]:
        async def query() -> dict[CustomerKey, CustomerSignals]:
            return await load_signals(await self._connected(), keys)

        return await retry_transient(query, transient=TRANSIENT_ERRORS, what="PostgreSQL")

    async def _connected(self) -> asyncpg.Pool:
        """The pool, made on first use (both agents may ask at once: one pool)."""
        async with self._connecting:
            if self._pool is None:
                self._pool = await connect_pool(self.database_url, max_size=2)
            return self._pool


async def _take_in_missed(
    pool: asyncpg.Pool,
    in_hand: Mapping[CustomerKey, datetime],
    states: dict[CustomerKey, CustomerSignals],
    counted_ids: dict[CustomerKey, list[str]],
) -> None:
    """Count in each profile (stored, or never stored: new) the stored events it missed
    (received before the first event in hand), and remember their ids with the counted
    ones: rows and counts agree again, and a client's re-send of one is counted once."""
    if not in_hand:
        return
    profiles = [states.get(key) or new_signals(*key) for key in in_hand]
    missed = await uncounted_events(pool, profiles, list(in_hand.values()))
    now = datetime.now(UTC)
    for profile in profiles:
        key = (profile.tenant_id, profile.external_id)
        counted = set(counted_ids.get(key, ()))
        taken = take_in(profile, [e for e in missed.get(key, ()) if e.id not in counted], now)
        if not taken:
            continue
        states[key] = profile
        counted_ids.setdefault(key, []).extend(e.id for e in taken)
        log.warning(
            "%s:%s: counted %d stored event(s) that the lost broker took before the profile"
            " had them",
            *key,
            len(taken),
        )
