"""Offers, their events and the decisions behind them: writes for the sink, reads for the API."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
from pydantic_core import to_json

from proffer_stream.core.identity import customer_id
from proffer_stream.core.types import CustomerKey
from proffer_stream.offers.decide import (
    MAX_KEPT_OFFERS,
    MAX_REMEMBERED_REQUESTS,
    CustomerOffers,
    restored_offers,
)
from proffer_stream.offers.lifecycle import NEXT_STATUSES
from proffer_stream.offers.models import (
    Channel,
    CommandOutcome,
    DecisionTrace,
    Offer,
    OfferEvent,
    OfferStatus,
)


async def apply_offer_events(conn: asyncpg.Connection, events: Sequence[OfferEvent]) -> int:
    """Project offer events: each event once, each offer at its highest version, each
    decision once. A re-delivered or older event never moves an offer back."""
    if not events:
        return 0
    await _insert_events(conn, events)
    await _insert_decisions(conn, [e for e in events if e.trace is not None])
    latest: dict[tuple[str, int], Offer] = {}
    for event in events:
        offer = event.offer
        if offer is None:
            continue
        known = latest.get((offer.tenant_id, offer.id))
        if known is None or known.version < offer.version:
            latest[(offer.tenant_id, offer.id)] = offer
    await _upsert_offers(conn, list(latest.values()))
    return len(events)


async def _insert_events(conn: asyncpg.Connection, events: Sequence[OfferEvent]) -> None:
    await conn.execute(
        """
        INSERT INTO offer_events (tenant_id, event_id, offer_id, event_type, version,
                                  occurred_at, cause, event)
        SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::int[],
                             $6::timestamptz[], $7::text[], $8::jsonb[])
        ON CONFLICT DO NOTHING
        """,
        [e.tenant_id for e in events],
        [e.event_id for e in events],
        [e.offer_id for e in events],
        [e.event_type for e in events],
        [e.version for e in events],
        [e.occurred_at for e in events],
        [e.cause for e in events],
        [e.model_dump_json(exclude={"trace"}) for e in events],
    )


async def _insert_decisions(conn: asyncpg.Connection, events: Sequence[OfferEvent]) -> None:
    if not events:
        return
    await conn.execute(
        """
        INSERT INTO decisions (tenant_id, request_id, customer_id, offer_id, outcome,
                               decided_at, trace)
        SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[],
                             $6::timestamptz[], $7::jsonb[])
        ON CONFLICT DO NOTHING
        """,
        [e.tenant_id for e in events],
        [e.request_id for e in events],
        [e.customer_id for e in events],
        [e.offer_id for e in events],
        ["offer" if e.offer is not None else "suppressed" for e in events],
        [e.occurred_at for e in events],
        [to_json(e.trace).decode() for e in events],
    )


async def _upsert_offers(conn: asyncpg.Connection, offers: Sequence[Offer]) -> None:
    if not offers:
        return
    await conn.execute(
        """
        INSERT INTO offers AS o (tenant_id, id, customer_id, external_customer_id, status,
                                 channel, offer_type, rule_id, request_id, version,
                                 generated_at, expires_at, offer, approved_at, sent_at,
                                 seen_at, clicked_at, redeemed_at, expired_at, redeemed_amount)
        SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::text[],
                             $6::text[], $7::text[], $8::text[], $9::text[], $10::int[],
                             $11::timestamptz[], $12::timestamptz[], $13::jsonb[],
                             $14::timestamptz[], $15::timestamptz[], $16::timestamptz[],
                             $17::timestamptz[], $18::timestamptz[], $19::timestamptz[],
                             $20::numeric[])
        ON CONFLICT (tenant_id, id) DO UPDATE SET
            status = EXCLUDED.status, channel = EXCLUDED.channel, version = EXCLUDED.version,
            expires_at = EXCLUDED.expires_at, offer = EXCLUDED.offer,
            approved_at = EXCLUDED.approved_at, sent_at = EXCLUDED.sent_at,
            seen_at = EXCLUDED.seen_at, clicked_at = EXCLUDED.clicked_at,
            redeemed_at = EXCLUDED.redeemed_at, expired_at = EXCLUDED.expired_at,
            redeemed_amount = EXCLUDED.redeemed_amount
        WHERE o.version < EXCLUDED.version
        """,
        [o.tenant_id for o in offers],
        [o.id for o in offers],
        [o.customer_id for o in offers],
        [o.external_customer_id for o in offers],
        [o.status for o in offers],
        [o.channel for o in offers],
        [o.offer_type for o in offers],
        [o.rule_id for o in offers],
        [o.request_id for o in offers],
        [o.version for o in offers],
        [o.generated_at for o in offers],
        [o.expires_at for o in offers],
        [o.model_dump_json() for o in offers],
        [o.approved_at for o in offers],
        [o.sent_at for o in offers],
        [o.seen_at for o in offers],
        [o.clicked_at for o in offers],
        [o.redeemed_at for o in offers],
        [o.expired_at for o in offers],
        [o.redemption.amount if o.redemption else None for o in offers],
    )


async def apply_command_outcomes(
    conn: asyncpg.Connection, outcomes: Sequence[CommandOutcome]
) -> int:
    """Project command outcomes: each command's once."""
    if not outcomes:
        return 0
    await conn.execute(
        """
        INSERT INTO offer_commands (tenant_id, command_id, offer_id, outcome, status, version,
                                    reason, allowed, occurred_at)
        SELECT tenant_id, command_id, offer_id, outcome, status, version, reason,
               ARRAY(SELECT jsonb_array_elements_text(allowed)), occurred_at
        FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::int[],
                    $7::text[], $8::jsonb[], $9::timestamptz[])
             AS u(tenant_id, command_id, offer_id, outcome, status, version, reason, allowed,
                  occurred_at)
        ON CONFLICT DO NOTHING
        """,
        [o.tenant_id for o in outcomes],
        [o.command_id for o in outcomes],
        [o.offer_id for o in outcomes],
        [o.outcome for o in outcomes],
        [o.status for o in outcomes],
        [o.version for o in outcomes],
        [o.reason for o in outcomes],
        [to_json(o.allowed).decode() for o in outcomes],
        [o.occurred_at for o in outcomes],
    )
    return len(outcomes)


async def get_command_outcome(
    pool: asyncpg.Pool, tenant_id: str, command_id: str
) -> CommandOutcome | None:
    """What became of a command, once the sink has it."""
    row = await pool.fetchrow(
        "SELECT command_id, tenant_id, offer_id, outcome, status, version, reason, allowed,"
        " occurred_at FROM offer_commands WHERE tenant_id = $1 AND command_id = $2",
        tenant_id,
        command_id,
    )
    return None if row is None else CommandOutcome.model_validate(dict(row))


async def offer_json_at(
    pool: asyncpg.Pool, tenant_id: str, offer_id: int, version: int
) -> str | None:
    """The offer's JSON (as :class:`Offer` dumped it) once the sink has it at ``version``
    or later: for an answer, with no model built in between."""
    value: str | None = await pool.fetchval(
        "SELECT offer FROM offers WHERE tenant_id = $1 AND id = $2 AND version >= $3",
        tenant_id,
        offer_id,
        version,
    )
    return value


async def offer_customer(pool: asyncpg.Pool, tenant_id: str, offer_id: int) -> str | None:
    """The external id of the customer an offer of the tenant was made to, if it exists."""
    value: str | None = await pool.fetchval(
        "SELECT external_customer_id FROM offers WHERE tenant_id = $1 AND id = $2",
        tenant_id,
        offer_id,
    )
    return value


async def list_offer_events(pool: asyncpg.Pool, tenant_id: str, offer_id: int) -> list[OfferEvent]:
    """An offer's whole history, oldest first: each change, and rejected redemptions."""
    rows = await pool.fetch(
        "SELECT event FROM offer_events WHERE tenant_id = $1 AND offer_id = $2"
        " ORDER BY version, occurred_at, event_id",
        tenant_id,
        offer_id,
    )
    return [OfferEvent.model_validate_json(row["event"]) for row in rows]


async def get_offer(pool: asyncpg.Pool, tenant_id: str, offer_id: int) -> Offer | None:
    """One offer of the tenant."""
    value = await pool.fetchval(
        "SELECT offer FROM offers WHERE tenant_id = $1 AND id = $2", tenant_id, offer_id
    )
    return None if value is None else Offer.model_validate_json(value)


@dataclass(frozen=True)
class OfferPage:
    """A page of offers, newest first, with how many match in all."""

    offers: list[Offer]
    total: int


async def list_offers(
    pool: asyncpg.Pool,
    tenant_id: str,
    *,
    status: OfferStatus | None,
    channel: Channel | None,
    customer_id: int | None,
    limit: int,
    offset: int,
) -> OfferPage:
    """The tenant's offers matching the filters, newest first."""
    where = """
        WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2)
          AND ($3::text IS NULL OR channel = $3) AND ($4::bigint IS NULL OR customer_id = $4)
    """
    args = (tenant_id, status, channel, customer_id)
    rows = await pool.fetch(
        f"SELECT offer FROM offers {where} ORDER BY generated_at DESC, id DESC LIMIT $5 OFFSET $6",
        *args,
        limit,
        offset,
    )
    total = await pool.fetchval(f"SELECT count(*) FROM offers {where}", *args)
    return OfferPage([Offer.model_validate_json(r["offer"]) for r in rows], total)


_DECISIONS = "SELECT request_id, offer_id, outcome, decided_at, trace FROM decisions"


@dataclass(frozen=True)
class Decision:
    """What became of an offer request."""

    request_id: str
    offer_id: int | None
    outcome: str
    decided_at: datetime
    trace: DecisionTrace


async def get_decision(pool: asyncpg.Pool, tenant_id: str, request_id: str) -> Decision | None:
    """The decision on one request, once the sink has it."""
    row = await pool.fetchrow(
        _DECISIONS + " WHERE tenant_id = $1 AND request_id = $2",
        tenant_id,
        request_id,
    )
    return None if row is None else _decision(row)


async def get_offer_decision(pool: asyncpg.Pool, tenant_id: str, offer_id: int) -> Decision | None:
    """The decision that made an offer."""
    row = await pool.fetchrow(
        _DECISIONS + " WHERE tenant_id = $1 AND offer_id = $2",
        tenant_id,
        offer_id,
    )
    return None if row is None else _decision(row)


async def list_decisions(
    pool: asyncpg.Pool, tenant_id: str, customer_id: int, *, limit: int, offset: int
) -> list[Decision]:
    """A customer's decisions, newest first, those that made no offer included."""
    rows = await pool.fetch(
        _DECISIONS + " WHERE tenant_id = $1 AND customer_id = $2"
        " ORDER BY decided_at DESC, request_id LIMIT $3 OFFSET $4",
        tenant_id,
        customer_id,
        limit,
        offset,
    )
    return [_decision(row) for row in rows]


def _decision(row: asyncpg.Record) -> Decision:
    return Decision(
        request_id=row["request_id"],
        offer_id=row["offer_id"],
        outcome=row["outcome"],
        decided_at=row["decided_at"],
        trace=DecisionTrace.model_validate_json(row["trace"]),
    )


async def customers_due_an_offer(
    pool: asyncpg.Pool, tenant_id: str, *, min_events: int, since: datetime, limit: int
) -> list[str]:
    """External ids of customers with ``min_events`` events and no offer since ``since``,
    most recently active first."""
    rows = await pool.fetch(
        """
        SELECT c.external_id FROM customers c
        WHERE c.tenant_id = $1 AND c.event_count >= $2
          AND NOT EXISTS (SELECT 1 FROM offers o WHERE o.tenant_id = c.tenant_id
                          AND o.customer_id = c.id AND o.generated_at > $3)
        ORDER BY c.last_seen_at DESC NULLS LAST, c.id LIMIT $4
        """,
        tenant_id,
        min_events,
        since,
        limit,
    )
    return [row["external_id"] for row in rows]


_KEYS = "unnest($1::text[], $2::bigint[], $3::text[]) WITH ORDINALITY AS k(t, c, x, i)"
"""The customers asked about: tenant, internal id, external id, and their position."""


async def load_customer_offers(
    pool: asyncpg.Pool, keys: Sequence[CustomerKey]
) -> dict[CustomerKey, CustomerOffers]:
    """What the offers agent kept of these customers, as PostgreSQL has it (for a worker
    whose table lost it): their newest offers, the ids of the requests and commands
    decided for them, and when their cooldowns started. Customers with no offer and no
    decision are left out."""
    if not keys:
        return {}
    args = ([k[0] for k in keys], [customer_id(*k) for k in keys], [k[1] for k in keys])
    offers = await pool.fetch(
        f"""
        SELECT k.i, o.offer FROM {_KEYS} CROSS JOIN LATERAL (
            SELECT offer FROM offers
            WHERE tenant_id = k.t AND customer_id = k.c AND external_customer_id = k.x
            ORDER BY generated_at DESC LIMIT $4) o
        """,
        *args,
        MAX_KEPT_OFFERS,
    )
    cooldowns = await pool.fetch(
        f"""
        SELECT k.i, max(o.generated_at) AS offered, max(o.redeemed_at) AS redeemed
        FROM {_KEYS} JOIN offers o
          ON o.tenant_id = k.t AND o.customer_id = k.c AND o.external_customer_id = k.x
        GROUP BY k.i
        """,
        *args,
    )
    # Requests by the customer's decisions; commands by the outcomes (API commands) and
    # the events (all commands that changed an offer) of the customer's offers.
    decided = await pool.fetch(
        f"""
        SELECT k.i, d.id, d.at FROM {_KEYS} CROSS JOIN LATERAL (
            (SELECT request_id AS id, decided_at AS at FROM decisions
             WHERE tenant_id = k.t AND customer_id = k.c
             ORDER BY decided_at DESC LIMIT $4)
            UNION ALL
            (SELECT c.command_id, c.occurred_at FROM offers o
             JOIN offer_commands c ON c.tenant_id = o.tenant_id AND c.offer_id = o.id
             WHERE o.tenant_id = k.t AND o.customer_id = k.c AND o.external_customer_id = k.x
             ORDER BY c.occurred_at DESC LIMIT $4)
            UNION ALL
            (SELECT e.event->>'command_id', e.occurred_at FROM offers o
             JOIN offer_events e ON e.tenant_id = o.tenant_id AND e.offer_id = o.id
             WHERE o.tenant_id = k.t AND o.customer_id = k.c AND o.external_customer_id = k.x
               AND e.event->>'command_id' IS NOT NULL
             ORDER BY e.occurred_at DESC LIMIT $4)) d
        """,
        *args,
        MAX_REMEMBERED_REQUESTS,
    )
    found: dict[int, list[Offer]] = {}
    for row in offers:
        found.setdefault(row["i"], []).append(Offer.model_validate_json(row["offer"]))
    ids: dict[int, list[tuple[datetime, str]]] = {}
    for row in decided:
        ids.setdefault(row["i"], []).append((row["at"], row["id"]))
    times = {row["i"]: row for row in cooldowns}
    restored = {}
    for i in found.keys() | ids.keys():
        tenant_id, external_id = keys[i - 1]
        cooldown = times.get(i)
        restored[keys[i - 1]] = restored_offers(
            tenant_id,
            external_id,
            found.get(i, []),
            ids.get(i, []),
            last_offer_at=cooldown["offered"] if cooldown else None,
            last_redeemed_at=cooldown["redeemed"] if cooldown else None,
        )
    return restored


OPEN_STATUSES = [status for status, moves in NEXT_STATUSES.items() if "expired" in moves]
"""The statuses of offers that may still expire."""


@dataclass(frozen=True)
class OpenOffer:
    """An offer that may still expire: whose it is, and when it is due."""

    tenant_id: str
    external_customer_id: str
    offer_id: int
    expires_at: datetime


async def any_offers(pool: asyncpg.Pool) -> bool:
    """Whether PostgreSQL holds any offer (of any tenant)."""
    return bool(await pool.fetchval("SELECT EXISTS (SELECT 1 FROM offers)"))


async def open_offers(pool: asyncpg.Pool) -> list[OpenOffer]:
    """Every offer that may still expire, of every tenant (for a worker's expiry timers
    when its table lost the offers)."""
    rows = await pool.fetch(
        "SELECT tenant_id, external_customer_id, id, expires_at FROM offers"
        " WHERE status = ANY($1::text[])",
        OPEN_STATUSES,
    )
    return [
        OpenOffer(r["tenant_id"], r["external_customer_id"], r["id"], r["expires_at"]) for r in rows
    ]


FIRING_SLACK = timedelta(seconds=10)
"""How much earlier than the rule's firing its decision may be stamped (the signals and
offers agents may run on machines whose clocks differ a little)."""


async def rules_decided(
    pool: asyncpg.Pool, fired: Sequence[tuple[str, int, str, datetime]]
) -> set[tuple[str, int, str]]:
    """Of these rule firings (tenant, customer id, rule id, when), those whose request
    reached a decision (an offer or none) at or after the firing."""
    if not fired:
        return set()
    rows = await pool.fetch(
        """
        SELECT f.t, f.c, f.r FROM unnest($1::text[], $2::bigint[], $3::text[],
                                         $4::timestamptz[]) AS f(t, c, r, at)
        WHERE EXISTS (SELECT 1 FROM decisions d
                      WHERE d.tenant_id = f.t AND d.customer_id = f.c
                        AND d.decided_at >= f.at - $5::interval
                        AND d.trace->>'rule_id' = f.r)
        """,
        [f[0] for f in fired],
        [f[1] for f in fired],
        [f[2] for f in fired],
        [f[3] for f in fired],
        FIRING_SLACK,
    )
    return {(r["t"], r["c"], r["r"]) for r in rows}
