"""Reading what the dashboard's forms send: url-encoded fields, the ids of the offers
ticked, and a JSON editor's text with its errors placed where they belong. Pure."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast
from urllib.parse import parse_qs

from pydantic import BaseModel, ValidationError

from proffer_stream.api.errors import error_details
from proffer_stream.core.types import ascii_number
from proffer_stream.db.dashboard import QueueFilter
from proffer_stream.offers.models import CHANNELS, OFFER_STATUSES, OfferStatus

MAX_IDS = 200
"""Most offers one bulk action moves."""
OFFER_ID_LIMIT = 2**53
M = TypeVar("M", bound=BaseModel)


def form_fields(body: bytes) -> dict[str, list[str]]:
    """An ``application/x-www-form-urlencoded`` body as its fields (bad bytes replaced)."""
    return parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)


def first(fields: dict[str, list[str]], name: str) -> str:
    """A field's first value, stripped; '' when absent."""
    values = fields.get(name)
    return values[0].strip() if values else ""


def offer_ids(values: Sequence[str]) -> list[int]:
    """The offer ids of ticked boxes: valid ones only, each once, in order, at most
    :data:`MAX_IDS`."""
    ids: list[int] = []
    for value in values:
        number = ascii_number(value.strip())
        if number is not None and 0 < number < OFFER_ID_LIMIT and number not in ids:
            ids.append(number)
    return ids[:MAX_IDS]


def version_number(text: str) -> int | None:
    """A version named in a query (a page of versions before it): None unless a whole
    number from 1 to 2**31 - 1."""
    number = ascii_number(text.strip(), 10)
    return number if number is not None and 0 < number < 2**31 else None


@dataclass(frozen=True)
class FieldError:
    """An error of an edited document: where (``rules[1].priority``) and what."""

    loc: str
    message: str


def parse_json_document(text: str, model: type[M]) -> tuple[M | None, list[FieldError]]:
    """The editor's text as ``model``, or the errors each placed at its field."""
    try:
        document: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        return None, [FieldError(loc="document", message=f"Not valid JSON ({where}): {exc.msg}")]
    try:
        return model.model_validate(document), []
    except ValidationError as exc:
        # as the API's 422 names them: body.rules[1].priority, 'rule "x": ...'
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
        return None, [FieldError(d.loc, d.message) for d in error_details(errors, document)]


def errors_by_field(errors: Sequence[FieldError]) -> dict[str, list[str]]:
    """The messages grouped by field, for showing each beside its field."""
    grouped: dict[str, list[str]] = {}
    for error in errors:
        grouped.setdefault(error.loc, []).append(error.message)
    return grouped


ACTIONS: dict[str, str] = {"approved": "Approve", "sent": "Send", "expired": "Expire"}
"""The statuses the queue moves offers to, with their buttons' words."""


def chosen_action(fields: dict[str, list[str]]) -> tuple[OfferStatus, list[int]] | None:
    """The queue's button pressed: ``approved:42`` moves one offer, ``approved`` the
    ticked ones (``ids``); None for anything else."""
    status, _, one = first(fields, "act").partition(":")
    if status not in ACTIONS:
        return None
    ids = offer_ids([one]) if one else offer_ids(fields.get("ids", []))
    return cast(OfferStatus, status), ids


def queue_filter(params: Mapping[str, str]) -> QueueFilter:
    """The queue's filters from its query: unknown values are dropped (the status falls
    back to ``generated``), never an error."""
    status = params.get("status", "")
    channel = params.get("channel", "")
    return QueueFilter(
        status=status if status in OFFER_STATUSES else "generated",
        channel=channel if channel in CHANNELS else None,
        rule_id=_text(params.get("rule"), 200),
        external_id=_text(params.get("customer"), 256),
    )


def _text(value: str | None, longest: int) -> str | None:
    """A free-text filter: None when empty, too long or holding a NUL."""
    text = (value or "").strip()
    return text if text and len(text) <= longest and "\x00" not in text else None
