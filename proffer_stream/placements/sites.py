"""Which site a placement request comes from, and whether an integration lets it show.

A site is a host, with its port when it has one (``shop.example``,
``shop.example:8443``); a pattern is a host or ``*.`` and a domain, which takes the
domain and every host under it. An integration blocks the sites its ``blocked_sites``
match and, when it names ``allowed_sites``, every site none of them matches.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from proffer_stream.catalog.models import IntegrationDefinition


def host_of(value: str | None) -> str | None:
    """The site of a URL, an origin or a bare host (lower case; None: none to read)."""
    text = (value or "").strip().lower()
    if not text or text == "null":
        return None
    try:
        parsed = urlsplit(text if "://" in text else f"//{text}")
        port = parsed.port
    except ValueError:
        return None
    if not parsed.hostname:
        return None
    return f"{parsed.hostname}:{port}" if port else parsed.hostname


def site_matches(pattern: str, site: str) -> bool:
    """Whether ``site`` is ``pattern``'s host (or under its ``*.`` domain), and on its
    port when the pattern names one."""
    pattern_host, _, pattern_port = pattern.partition(":")
    host, _, port = site.partition(":")
    if pattern_port and pattern_port != port:
        return False
    if pattern_host.startswith("*."):
        domain = pattern_host[2:]
        return host == domain or host.endswith(f".{domain}")
    return host == pattern_host


def blocked_because(integration: IntegrationDefinition, site: str | None) -> str | None:
    """Why the integration does not show offers on ``site`` (None: it does; a request
    that names no site is not refused for it)."""
    if site is None:
        return None
    if any(site_matches(p, site) for p in integration.blocked_sites):
        return f"the site {site} is blocked"
    if integration.allowed_sites and not any(
        site_matches(p, site) for p in integration.allowed_sites
    ):
        return f"the site {site} is not among the allowed sites"
    return None
