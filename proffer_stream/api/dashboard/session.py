"""The dashboard's session: a signed cookie naming the API key (by its hash) it was
opened with, and the session's CSRF token. Pure: time is passed in."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import asdict, dataclass

COOKIE = "proffer_session"
MAX_AGE_SECONDS = 12 * 3600
"""How long a session lasts after sign-in (a revoked key ends it sooner: every request
checks the key)."""
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"


@dataclass(frozen=True)
class Session:
    """Who is signed in: the hash of their API key, the session's CSRF token, and when."""

    key_hash: str
    csrf: str
    issued_at: int


def session_secret(signing_key: bytes) -> bytes:
    """The key sessions are signed with, derived from the gateway's signing key."""
    return hmac.new(signing_key, b"proffer-dashboard-session", hashlib.sha256).digest()


def new_session(key_hash: str, now: float) -> Session:
    """A fresh session for a key, with a fresh CSRF token."""
    return Session(key_hash=key_hash, csrf=secrets.token_urlsafe(24), issued_at=int(now))


def seal(session: Session, secret: bytes) -> str:
    """The cookie's value: the session as base64 JSON and its HMAC-SHA256."""
    payload = _b64(json.dumps(asdict(session), separators=(",", ":")).encode())
    return f"{payload}.{_b64(_mac(payload, secret))}"


def unseal(value: str, secret: bytes, now: float) -> Session | None:
    """The session a cookie holds, or None if it is forged, malformed or too old."""
    payload, _, mac = value.partition(".")
    try:
        if not hmac.compare_digest(base64.urlsafe_b64decode(_padded(mac)), _mac(payload, secret)):
            return None
        fields = json.loads(base64.urlsafe_b64decode(_padded(payload)))
        session = Session(
            key_hash=str(fields["key_hash"]),
            csrf=str(fields["csrf"]),
            issued_at=int(fields["issued_at"]),
        )
    except (ValueError, KeyError, TypeError):
        return None
    if not 0 <= now - session.issued_at < MAX_AGE_SECONDS:
        return None
    return session


def csrf_valid(session: Session, given: str | None) -> bool:
    """Whether a form or header carries this session's CSRF token."""
    return given is not None and hmac.compare_digest(session.csrf.encode(), given.encode())


def _mac(payload: str, secret: bytes) -> bytes:
    return hmac.new(secret, payload.encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _padded(text: str) -> bytes:
    return (text + "=" * (-len(text) % 4)).encode()
