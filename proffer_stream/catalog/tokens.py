"""Encoded offers: a signed, tamper-evident token a point of sale verifies and uses once.

A token names the tenant, the catalog offer, the member, its own id and when it
expires, signed with HMAC-SHA256 under the deployment's signing key:
``<base64url(payload)>.<base64url(mac)>``. Anyone holding it can read what it names
(it is no secret); nobody without the key can make or change one. It is used once
because the offer's owner remembers the token ids used (``token_used``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime

from pydantic import ValidationError

from proffer_stream.core.types import StrictModel


class EncodedOffer(StrictModel):
    """What a token says: whose offer, for whom, which token, until when (epoch s)."""

    t: str
    o: int
    m: str
    i: str
    e: int

    @property
    def expires_at(self) -> datetime:
        return datetime.fromtimestamp(self.e, UTC)


class BadToken(ValueError):
    """A token that cannot be used: ``reason`` is bad_token or token_expired."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, payload: str) -> bytes:
    return hmac.new(key, payload.encode(), hashlib.sha256).digest()


def encode_offer(key: bytes, offer: EncodedOffer) -> str:
    """The signed token of ``offer``."""
    payload = _b64(json.dumps(offer.model_dump(), separators=(",", ":")).encode())
    return f"{payload}.{_b64(_mac(key, payload))}"


def decode_offer(key: bytes, token: str, now: datetime) -> EncodedOffer:
    """What ``token`` says, if signed with ``key`` and not expired at ``now``, else
    :class:`BadToken`."""
    payload, dot, signature = token.partition(".")
    try:
        given = _unb64(signature)
    except ValueError:
        given = b""
    if not dot or not hmac.compare_digest(given, _mac(key, payload)):
        raise BadToken("bad_token", "the token's signature does not match: not ours, or changed")
    try:
        offer = EncodedOffer.model_validate_json(_unb64(payload))
    except (ValueError, ValidationError):
        raise BadToken("bad_token", "the token does not say what an encoded offer says") from None
    if now >= offer.expires_at:
        raise BadToken("token_expired", f"the token expired at {offer.expires_at.isoformat()}")
    return offer
