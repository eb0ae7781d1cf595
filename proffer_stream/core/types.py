"""Field types and the strict base model shared by every message."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer


def as_utc(value: datetime) -> datetime:
    """Read a naive timestamp as UTC; keep aware ones as given, converted to UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _id_to_str(value: Any) -> Any:
    """Accept integer ids from clients that keep them as numbers."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]
ExternalId = Annotated[str, BeforeValidator(_id_to_str), Field(min_length=1, max_length=256)]
EventId = Annotated[str, BeforeValidator(_id_to_str), Field(min_length=1, max_length=200)]
TenantId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
EventType = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")]
Money = Annotated[Decimal, PlainSerializer(float, return_type=float, when_used="json")]

CustomerKey = tuple[str, str]
"""A customer as the pipeline keys it: (tenant id, external id)."""


class StrictModel(BaseModel):
    """Base for messages we accept: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")
