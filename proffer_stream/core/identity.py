"""Ids and keys: how customers, events and Kafka records are named, deterministically.

Everything here is a pure function of its input, so a replayed record gets the same
ids and lands on the same rows (at-least-once delivery, idempotent effects).
"""

from __future__ import annotations

import hashlib
import uuid

_CUSTOMER_ID_BITS = 53  # fits a JavaScript number exactly


def _id53(text: str) -> int:
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") >> (64 - _CUSTOMER_ID_BITS)) or 1


def customer_id(tenant_id: str, external_id: str) -> int:
    """Proffer's internal customer id: a stable 53-bit hash of tenant and external id.

    Stable ids need no coordination between gateways and survive a replay of the
    topics into empty tables. Two external ids of one tenant can collide (odds about
    n^2 / 2^54 for n customers: 1 in 18,000 for a million); the projection then keeps the
    first customer's row and the sink logs an error for the other.
    """
    return _id53(f"{tenant_id}\x00{external_id}")


def offer_id(tenant_id: str, request_id: str) -> int:
    """The id of the offer a request yields: a replayed request can never make a second one.

    53 bits, like customer ids; collisions within a tenant: about n^2 / 2^54 for n offers.
    """
    return _id53(f"offer\x00{tenant_id}\x00{request_id}")


def rule_request_id(
    tenant_id: str, external_id: str, rule_id: str, offset: int, event_id: str
) -> str:
    """The id of the request a rule makes when a record (at ``offset``, its update's last
    counted event ``event_id``) fires it."""
    digest = hashlib.blake2b(
        f"{tenant_id}\x00{external_id}\x00{rule_id}\x00{offset}\x00{event_id}".encode(),
        digest_size=12,
    )
    return f"rule-{digest.hexdigest()}"


def idempotent_command_id(tenant_id: str, scope: str, key: str) -> str:
    """The id of a command a client named with an ``Idempotency-Key``: the same key for
    the same ``scope`` (what it acts on) gives the same command, decided once."""
    digest = hashlib.blake2b(f"{tenant_id}\x00{scope}\x00{key}".encode(), digest_size=16)
    return f"idem-{digest.hexdigest()}"


def partition_key(tenant_id: str, external_id: str) -> bytes:
    """Kafka key of every record about one customer: ``<tenant_id>:<external id>``."""
    return f"{tenant_id}:{external_id}".encode()


def new_request_id() -> str:
    """A unique id for one HTTP request; its events without ids get ``<id>-<position>``."""
    return uuid.uuid4().hex


def record_event_id(timestamp_ms: int, partition: int, offset: int, index: int) -> str:
    """The id of an event that came straight from Kafka without one, from its record."""
    return f"k{timestamp_ms}-{partition}-{offset}-{index}"


def catalog_item_id(tenant_id: str, target: str, command_id: str) -> int:
    """The id of the catalog offer or collection (``target``) a create command makes:
    a create sent again makes the same one. 53 bits, like offer ids."""
    return _id53(f"catalog\x00{target}\x00{tenant_id}\x00{command_id}")
