"""The dashboard's queries: sign-in links, keys of a tenant, charts over time, the review
queue, and what the live feed reads."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import asyncpg

from proffer_stream.core.identity import customer_id
from proffer_stream.offers.models import DecisionTrace, Offer

SIGN_IN_LINK_TTL = timedelta(days=1)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_sign_in_token(
    pool: asyncpg.Pool, key_hash: str, ttl: timedelta = SIGN_IN_LINK_TTL
) -> str:
    """A token that signs a browser in with the key of ``key_hash`` once, within ``ttl``."""
    token = secrets.token_urlsafe(32)
    await pool.execute(
        "INSERT INTO dashboard_sign_in_tokens (token_hash, key_hash, expires_at)"
        " VALUES ($1, $2, now() + $3)",
        _token_hash(token),
        key_hash,
        ttl,
    )
    return token


async def use_sign_in_token(pool: asyncpg.Pool, token: str) -> str | None:
    """The key hash a token signs in with, marking it used; None when unknown, used or
    expired."""
    found: str | None = await pool.fetchval(
        "UPDATE dashboard_sign_in_tokens SET used_at = now()"
        " WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now() RETURNING key_hash",
        _token_hash(token),
    )
    return found


async def revoke_tenant_key(pool: asyncpg.Pool, tenant_id: str, key_id: int) -> bool:
    """Revoke one of the tenant's keys; False when it has no such active key."""
    status: str = await pool.execute(
        "UPDATE api_keys SET revoked_at = now()"
        " WHERE id = $1 AND tenant_id = $2 AND revoked_at IS NULL",
        key_id,
        tenant_id,
    )
    return status.endswith(" 1")


@dataclass(frozen=True)
class Bucket:
    """The offers generated in one bar of a chart: how many, how many were redeemed since,
    and their revenue."""

    start: datetime
    generated: int
    redeemed: int
    revenue: Decimal


async def offers_over_time(
    pool: asyncpg.Pool, tenant_id: str, since: datetime, until: datetime, bucket: timedelta
) -> list[Bucket]:
    """The tenant's offers generated in ``[since, until)`` in bars of ``bucket``."""
    rows = await pool.fetch(
        """
        SELECT date_bin($4::interval, generated_at, '2000-01-01T00:00:00Z') AS start,
               count(*) AS generated, count(redeemed_at) AS redeemed,
               coalesce(sum(redeemed_amount), 0) AS revenue
        FROM offers
        WHERE tenant_id = $1 AND generated_at >= $2 AND generated_at < $3
        GROUP BY 1 ORDER BY 1
        """,
        tenant_id,
        since,
        until,
        bucket,
    )
    return [Bucket(r["start"], r["generated"], r["redeemed"], r["revenue"]) for r in rows]


@dataclass(frozen=True)
class QueueFilter:
    """What the review queue shows: offers of a status, optionally of one channel, rule
    and customer (by external id)."""

    status: str = "generated"
    channel: str | None = None
    rule_id: str | None = None
    external_id: str | None = None


@dataclass(frozen=True)
class QueuedOffer:
    """An offer with the trace of the decision that made it."""

    offer: Offer
    trace: DecisionTrace | None


async def review_queue(
    pool: asyncpg.Pool, tenant_id: str, given: QueueFilter, limit: int
) -> list[QueuedOffer]:
    """The tenant's offers matching ``given``, newest first, each with its trace."""
    rows = await pool.fetch(
        """
        SELECT o.offer, d.trace
        FROM offers o
        LEFT JOIN decisions d ON d.tenant_id = o.tenant_id AND d.offer_id = o.id
        WHERE o.tenant_id = $1 AND o.status = $2
          AND ($3::text IS NULL OR o.channel = $3)
          AND ($4::text IS NULL OR o.rule_id = $4)
          AND ($5::bigint IS NULL OR o.customer_id = $5)
        ORDER BY o.generated_at DESC, o.id DESC
        LIMIT $6
        """,
        tenant_id,
        given.status,
        given.channel,
        given.rule_id,
        None if given.external_id is None else customer_id(tenant_id, given.external_id),
        limit,
    )
    return [
        QueuedOffer(
            Offer.model_validate_json(r["offer"]),
            None if r["trace"] is None else DecisionTrace.model_validate_json(r["trace"]),
        )
        for r in rows
    ]


async def recent_customers(pool: asyncpg.Pool, tenant_id: str, limit: int) -> list[str]:
    """The signals JSON of the tenant's most recently active customers (in the order of
    the index customers_recent, so no sort of them all)."""
    rows = await pool.fetch(
        "SELECT signals FROM customers WHERE tenant_id = $1 AND last_seen_at IS NOT NULL"
        " ORDER BY last_seen_at DESC NULLS LAST, id LIMIT $2",
        tenant_id,
        limit,
    )
    return [row["signals"] for row in rows]
