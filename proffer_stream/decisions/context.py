"""A decision's request context, and whether a catalog offer's context conditions hold.

The device is read from the user agent (or given by the caller); the locale matches by
language, a region falling back to its language (``pl-PL`` is ``pl``).
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from typing import Annotated, Any, get_args

from pydantic import AfterValidator, Field

from proffer_stream.catalog.models import ContextConditions, CustomValue, Device, language_code
from proffer_stream.core.limits import no_nul
from proffer_stream.core.types import StrictModel

Short = Annotated[str, Field(max_length=2_000), AfterValidator(no_nul)]

DEVICES: tuple[Device, ...] = get_args(Device)
_BOT = re.compile(r"bot|crawl|spider|slurp|headless", re.IGNORECASE)
_TABLET = re.compile(r"ipad|tablet|kindle|silk|playbook|android(?!.*mobile)", re.IGNORECASE)
_MOBILE = re.compile(r"mobi|iphone|ipod|android.*mobile|windows phone|blackberry", re.IGNORECASE)


def device_of(user_agent: str | None) -> Device | None:
    """The kind of device a user agent names: bot, tablet, mobile or desktop (None: no
    user agent)."""
    if not user_agent:
        return None
    if _BOT.search(user_agent):
        return "bot"
    if _TABLET.search(user_agent):
        return "tablet"
    if _MOBILE.search(user_agent):
        return "mobile"
    return "desktop"


def device_named(value: str | None) -> Device | None:
    """The device a caller names (``chargebee-request-origin-device``), if one we know."""
    lowered = (value or "").strip().lower()
    return next((d for d in DEVICES if d == lowered), None)


def normal_locale(code: str) -> str:
    """``en_US`` as ``en-US``; ValueError when it is not a language code."""
    return language_code(code.replace("_", "-"))


class DecisionContext(StrictModel):
    """What a decision knows of the request beyond the customer's profile."""

    url: Short | None = None
    referrer_url: Short | None = None
    locale: str | None = None
    timezone: str | None = None
    user_agent: Short | None = None
    device: Device | None = None
    ip: Short | None = None
    roles: list[Short] = Field(default_factory=list)
    custom: dict[str, Any] = Field(default_factory=dict)
    integration_id: int | None = Field(None, description="At a placement: the integration.")
    flow_id: Short | None = Field(None, description="At a placement: the visit (flow).")
    placement: Short | None = Field(None, description="At a placement: its name.")
    site: Short | None = Field(None, description="At a placement: the site's host.")


def context_misses(conditions: ContextConditions | None, context: DecisionContext) -> list[str]:
    """Which of an offer's context conditions the request does not meet (empty: all)."""
    if conditions is None:
        return []
    misses = []
    if conditions.url_patterns and not _url_matches(conditions.url_patterns, context.url):
        misses.append(f"url {context.url!r} matches none of {conditions.url_patterns}")
    if conditions.locales and not _locale_matches(conditions.locales, context.locale):
        misses.append(f"locale {context.locale!r} is none of {conditions.locales}")
    if conditions.devices and context.device not in conditions.devices:
        misses.append(f"device {context.device!r} is none of {conditions.devices}")
    if conditions.roles and not set(conditions.roles) & set(context.roles):
        misses.append(f"roles {context.roles} include none of {conditions.roles}")
    for name, wanted in conditions.custom_equals.items():
        if not _same(context.custom.get(name), wanted):
            misses.append(f"custom {name!r} is {context.custom.get(name)!r}, not {wanted!r}")
    return misses


def context_fits(conditions: ContextConditions | None, context: DecisionContext) -> bool:
    """Whether the request meets every context condition (:func:`context_misses` is empty)."""
    if conditions is None:
        return True
    return (
        (not conditions.url_patterns or _url_matches(conditions.url_patterns, context.url))
        and (not conditions.locales or _locale_matches(conditions.locales, context.locale))
        and (not conditions.devices or context.device in conditions.devices)
        and (not conditions.roles or not set(conditions.roles).isdisjoint(context.roles))
        and all(_same(context.custom.get(k), v) for k, v in conditions.custom_equals.items())
    )


def _url_matches(patterns: list[str], url: str | None) -> bool:
    return url is not None and any(fnmatchcase(url, pattern) for pattern in patterns)


def _locale_matches(locales: list[str], locale: str | None) -> bool:
    if locale is None:
        return False
    wanted = {code.lower() for code in locales}
    return locale.lower() in wanted or locale.split("-", 1)[0].lower() in wanted


def _same(given: Any, wanted: CustomValue) -> bool:
    """Equal and of the same kind: ``true`` is not ``1``, ``1`` is ``1.0``."""
    if isinstance(given, bool) or isinstance(wanted, bool):
        return type(given) is type(wanted) and given == wanted
    return bool(given == wanted)
