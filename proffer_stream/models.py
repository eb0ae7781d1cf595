"""Pydantic v2 models: every HTTP body and every Kafka message is one of these.

``schemas/`` holds the JSON Schema of each topic message, generated from these models
(``proffer-stream schemas write``); a test fails when the two drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    field_validator,
)


def _as_utc(value: datetime) -> datetime:
    """Read a naive timestamp as UTC; keep aware ones as given, converted to UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _id_to_str(value: Any) -> Any:
    """Accept integer ids from clients that keep them as numbers."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]
ExternalId = Annotated[str, BeforeValidator(_id_to_str), Field(min_length=1, max_length=256)]
EventId = Annotated[str, BeforeValidator(_id_to_str), Field(min_length=1, max_length=200)]
TenantId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
EventType = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")]
Money = Annotated[Decimal, PlainSerializer(float, return_type=float, when_used="json")]
StrictNumber = Annotated[float, Field(strict=True, ge=0)]


class StrictModel(BaseModel):
    """Base for messages we accept: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


# --- Well-known event types: the data fields we read for signals must have the right type.


class _KnownData(BaseModel):
    model_config = ConfigDict(extra="allow")


class PageViewData(_KnownData):
    page: str | None = None
    duration_seconds: StrictNumber | None = None


class PurchaseData(_KnownData):
    amount: StrictNumber | None = None
    product: str | None = None
    currency: str | None = None


class ClickData(_KnownData):
    element: str | None = None
    page: str | None = None


class FeatureUseData(_KnownData):
    feature: str | None = None
    times_used: Annotated[int, Field(strict=True, ge=0)] | None = None


class CartAbandonData(_KnownData):
    items: Any = None
    total: StrictNumber | None = None


class SignupData(_KnownData):
    plan: str | None = None
    source: str | None = None


KNOWN_EVENT_DATA: dict[str, type[_KnownData]] = {
    "page_view": PageViewData,
    "purchase": PurchaseData,
    "click": ClickData,
    "feature_use": FeatureUseData,
    "cart_abandon": CartAbandonData,
    "signup": SignupData,
}


# --- Ingest: the webhook body and the proffer.events message.


class CustomerIn(StrictModel):
    """The customer an event batch is about, identified by the business's own id."""

    id: ExternalId = Field(description="Your external customer id (required).")
    email: Annotated[str, Field(max_length=320)] | None = None
    name: Annotated[str, Field(max_length=256)] | None = None
    metadata: dict[str, Any] | None = Field(None, description="Any extra context.")


class EventIn(StrictModel):
    """One behavioural event. Any type is accepted; well-known types have typed data fields."""

    id: EventId | None = Field(
        None, description="Your id for this event; a re-sent event with the same id counts once."
    )
    type: EventType = Field(description="page_view, purchase, click, feature_use, ... or your own.")
    data: dict[str, Any] = Field(default_factory=dict)
    occurred_at: UtcDatetime | None = Field(None, description="When it happened; default: now.")

    @field_validator("data")
    @classmethod
    def _known_data_fields_have_their_types(cls, data: dict[str, Any], info: ValidationInfo) -> Any:
        """Check the fields signals read (e.g. a purchase's amount); errors name the field.

        A field validator (``type`` is validated before ``data``) running the known
        model's core validator: about a third of the cost of a model validator that
        builds the known model, and pydantic nests its errors under ``data``.
        """
        schema = KNOWN_EVENT_DATA.get(info.data.get("type", ""))
        if schema is not None:
            schema.__pydantic_validator__.validate_python(data)
        return data


class WebhookEventsRequest(StrictModel):
    """Body of ``POST /api/webhook/events``: one customer and their events."""

    customer: CustomerIn
    events: list[EventIn] = Field(min_length=1, description="The events, oldest first.")


class EventBatch(StrictModel):
    """Value of a ``proffer.events`` message (v1): a customer and one or more events.

    Key the message ``<tenant_id>:<customer.id>`` (UTF-8) so that a customer's events
    share a partition. ``id``, ``occurred_at`` and ``received_at`` may be left out by
    direct producers; the pipeline then derives them from the Kafka record.
    """

    schema_version: Literal[1] = 1
    tenant_id: TenantId
    customer: CustomerIn
    events: list[EventIn] = Field(min_length=1)
    received_at: UtcDatetime | None = None


@dataclass(frozen=True, slots=True)
class NormalizedEvent:
    """An event with its id and times settled: what signals count and the sink stores.

    A plain dataclass: built in-process from an already validated record, many per
    record, where a pydantic model's second validation was a tenth of the sink's CPU.
    """

    id: str
    type: str
    data: dict[str, Any]
    occurred_at: datetime
    received_at: datetime


class DeadLetter(BaseModel):
    """Value of a ``proffer.deadletter`` message: what could not be processed, and why."""

    schema_version: Literal[1] = 1
    reason: Literal["invalid_json", "invalid_message", "wrong_key", "processing_error"]
    error: str = Field(description="What was wrong, and where.")
    stage: str = Field(description="The component that gave up on the message.")
    source_topic: str
    partition: int
    offset: int
    timestamp_ms: int | None = None
    key_b64: str | None = Field(None, description="The original key, base64.")
    value_b64: str = Field(description="The original value bytes, base64.")
    failed_at: UtcDatetime


# --- State: the signals table value (and its changelog message).


class CustomerSignals(BaseModel):
    """A customer's live profile, owned by the signals agent (one writer per key).

    Kept in the Faust table ``signals`` keyed ``<tenant_id>:<external id>``; each
    update goes to the table's changelog topic, which the sink projects into PostgreSQL.
    """

    model_config = ConfigDict(extra="ignore")

    schema_version: Literal[1] = 1
    tenant_id: TenantId
    customer_id: int
    external_id: str
    email: str | None = None
    name: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    event_count: int = 0
    counts_by_type: dict[str, int] = Field(default_factory=dict)
    first_seen_at: UtcDatetime | None = None
    last_seen_at: UtcDatetime | None = None
    purchase_count: int = 0
    purchase_total: Money = Decimal(0)
    last_purchase_at: UtcDatetime | None = None
    page_views: dict[str, int] = Field(default_factory=dict)
    cart_abandon_count: int = 0
    cart_abandon_total: Money = Decimal(0)
    features_used: dict[str, int] = Field(default_factory=dict)
    signed_up: bool = False
    signed_up_at: UtcDatetime | None = None
    signup_plan: str | None = None
    hourly_counts: dict[int, dict[str, int]] = Field(
        default_factory=dict,
        description="Event counts per type in each hour (epoch hour) of the last 7 days.",
    )

    recent_event_ids: list[str] = Field(
        default_factory=list, description="Latest event ids applied, to count re-sends once."
    )
    source_offset: int = Field(
        -1, description="Offset of the last proffer.events record applied (one partition per key)."
    )
    updated_at: UtcDatetime | None = None


# --- HTTP responses.


class IngestResponse(BaseModel):
    success: Literal[True] = True
    customer_id: int = Field(description="Proffer's internal id of the customer.")
    events_ingested: int
    message: str = "Events ingested successfully"


class ErrorDetail(BaseModel):
    loc: str = Field(description="Where in the input, e.g. 'events[1].type'.")
    message: str


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[ErrorDetail] = Field(default_factory=list)


class ErrorResponse(BaseModel):
    success: Literal[False] = False
    error: ErrorBody


class WindowCounts(BaseModel):
    events: int
    by_type: dict[str, int]


class SignalsOut(BaseModel):
    """The signals of a customer as the API shows them, windows computed at read time."""

    event_count: int
    counts_by_type: dict[str, int]
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    purchase_count: int
    purchase_total: Money
    last_purchase_at: datetime | None
    distinct_pages: int
    page_views: dict[str, int]
    cart_abandon_count: int
    cart_abandon_total: Money
    features_used: dict[str, int]
    signed_up: bool
    signed_up_at: datetime | None
    signup_plan: str | None
    windows: dict[str, WindowCounts] = Field(description="Counts in the last 24 hours and 7 days.")


class CustomerOut(BaseModel):
    id: int
    external_id: str
    email: str | None
    name: str | None
    metadata: dict[str, Any]
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    signals: SignalsOut


class CustomerResponse(BaseModel):
    success: Literal[True] = True
    customer: CustomerOut


class StoredEvent(BaseModel):
    id: str
    type: str
    data: dict[str, Any]
    occurred_at: datetime
    received_at: datetime


class EventsResponse(BaseModel):
    success: Literal[True] = True
    events: list[StoredEvent]
    limit: int
    offset: int


class ApiKeyCreate(StrictModel):
    name: Annotated[str, Field(min_length=1, max_length=100)] = "API key"


class ApiKeyCreated(BaseModel):
    success: Literal[True] = True
    key: str = Field(description="The secret; shown once, stored only as a hash.")
    id: int
    name: str
    tenant_id: str
    created_at: datetime

    @field_validator("created_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return _as_utc(value)
