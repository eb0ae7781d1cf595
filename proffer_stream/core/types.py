"""Field types and the strict base model shared by every message."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

from proffer_stream.core.limits import in_range, no_nul


def as_utc(value: datetime) -> datetime:
    """Read a naive timestamp as UTC; keep aware ones as given, converted to UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-05:00 is past the last datetime
        raise ValueError("is out of range") from None


def ascii_number(text: str, most_digits: int = 18) -> int | None:
    """``text`` as a whole number when it is 1 to ``most_digits`` ASCII digits, else None.

    ``str.isdigit`` also takes ``"²"``, which ``int`` refuses, and ``int`` refuses more
    than 4,300 digits: a check then ``int`` raised on text a client sent.
    """
    if 0 < len(text) <= most_digits and text.isascii() and text.isdigit():
        return int(text)
    return None


def _id_to_str(value: Any) -> Any:
    """Accept integer ids from clients that keep them as numbers."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _whole(value: Any) -> Any:
    """A float without a fraction as the integer it is: JSON, and so the spec's
    ``integer``, make no difference between ``2`` and ``2.0``."""
    if type(value) is float and value.is_integer():
        return int(value)
    return value


WHOLE = BeforeValidator(_whole)
"""Takes ``2.0`` as an integer; it goes after the integer's constraints
(``Annotated[int, Field(ge=0), WHOLE]``), so that they stay in the JSON schema."""
WholeNumber = Annotated[int, WHOLE]
"""An integer, ``2.0`` included; with ``strict=True`` on the field, ``true`` and ``"2"``
are not one."""
NO_NUL = Field(json_schema_extra={"pattern": r"^[^\u0000]*$"})
"""What the spec says of a string PostgreSQL can store (:func:`no_nul` checks it)."""

UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]


def _sane_utc(value: datetime) -> datetime:
    return in_range(as_utc(value))


SaneDatetime = Annotated[datetime, AfterValidator(_sane_utc)]
"""A timestamp we accept from clients: in UTC, between 1970 and 2100."""


_DATE_FIRST = re.compile(r"\d{4}-\d\d-\d\d")
"""How an ISO 8601 date-time starts (``2.5e-55`` has a ``-`` too)."""


def iso_8601_text(value: Any) -> Any:
    """``value`` unless it is a number or text that is no ISO 8601 date-time: pydantic
    reads 189675893447 (or "2.5e-55") as seconds or milliseconds, which no client means."""
    if isinstance(value, int | float) or (
        isinstance(value, str) and not _DATE_FIRST.match(value.strip())
    ):
        raise ValueError("must be an ISO 8601 date-time string, e.g. 2027-06-01T00:00:00Z")
    return value


IsoDatetime = Annotated[SaneDatetime, BeforeValidator(iso_8601_text)]
"""A :data:`SaneDatetime` given as ISO 8601 text only, as the spec says (a number is no
date-time there)."""
Text = Annotated[str, NO_NUL, AfterValidator(no_nul)]
"""A string PostgreSQL can store."""
# The length limits come before the number-to-text step, so that they are checked in
# pydantic's core with the string (after it, each was a Python call: 0.89 against 0.49
# µs per id); a number is made text first all the same.
ExternalId = Annotated[
    str,
    Field(min_length=1, max_length=256),
    NO_NUL,
    BeforeValidator(_id_to_str),
    AfterValidator(no_nul),
]
EventId = Annotated[
    str,
    Field(min_length=1, max_length=200),
    NO_NUL,
    BeforeValidator(_id_to_str),
    AfterValidator(no_nul),
]
TenantId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
EventType = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")]


def _exact(amount: Decimal) -> str:
    return format(amount, "f")


Money = Annotated[Decimal, PlainSerializer(_exact, return_type=str, when_used="json")]
"""An amount of money: exact (a decimal, PostgreSQL ``numeric``), written to JSON as a
decimal string (``"100000000000000.01"``), which a float cannot hold. Taken from JSON as a
number or a string."""

CustomerKey = tuple[str, str]
"""A customer as the pipeline keys it: (tenant id, external id)."""


class StrictModel(BaseModel):
    """Base for messages we accept: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")
