"""Flows: one visit of a customer at an integration's placements.

A flow id carries what the flow is (the integration, the customer, the site, when it
started) and a MAC over it and the tenant (HMAC-SHA256 with the gateways' signing key),
so any gateway reads a flow without storing or looking it up, and a flow id forged, or of
another tenant or integration, is unknown. What a flow showed is not in the id: it is
read from the decisions made in it (logged, and projected by the sink).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime

PREFIX = "flw_"
MAC_BYTES = 16


@dataclass(frozen=True)
class Flow:
    """One visit: whose, at which integration, from which site, since when."""

    integration_id: int
    external_customer_id: str
    site: str | None
    started_at: datetime
    nonce: str


def new_flow_id(key: bytes, tenant_id: str, flow: Flow) -> str:
    """The flow's id: ``flw_<its fields, base64url>.<MAC>``."""
    fields = [
        flow.integration_id,
        flow.external_customer_id,
        flow.site,
        int(flow.started_at.timestamp() * 1000),
        flow.nonce,
    ]
    body = _b64(json.dumps(fields, separators=(",", ":")).encode())
    return f"{PREFIX}{body}.{_mac(key, tenant_id, body)}"


def read_flow(key: bytes, tenant_id: str, integration_id: int, some_id: str) -> Flow | None:
    """The flow ``some_id`` names, if it is a flow of this tenant's integration."""
    body, dot, mac = some_id.removeprefix(PREFIX).partition(".")
    if not some_id.startswith(PREFIX) or not dot:
        return None
    if not hmac.compare_digest(mac, _mac(key, tenant_id, body)):
        return None
    try:
        integration, customer, site, started_ms, nonce = json.loads(_unb64(body))
    except (ValueError, TypeError, binascii.Error):
        return None
    if integration != integration_id:
        return None
    started = datetime.fromtimestamp(started_ms / 1000, UTC)
    return Flow(integration, customer, site, started, nonce)


def _mac(key: bytes, tenant_id: str, body: str) -> str:
    digest = hmac.new(key, f"flow\x00{tenant_id}\x00{body}".encode(), hashlib.sha256).digest()
    return _b64(digest[:MAC_BYTES])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
