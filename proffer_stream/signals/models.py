"""A customer's signals: the profile public messages carry, the state the signals agent
owns (that profile and the agent's bookkeeping), and the views the API shows."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from proffer_stream.core.types import Money, TenantId, UtcDatetime


class Signals(BaseModel):
    """What the events of a customer add up to: counts, money, pages, features, recency."""

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


class CustomerProfile(Signals):
    """A customer and their signals, as public messages carry them (an offer request's
    snapshot, a decision's trace): what the customer did, not the worker's bookkeeping.

    Unknown fields are ignored: older records carried the worker's whole state here.
    """

    model_config = ConfigDict(extra="ignore")

    tenant_id: TenantId
    customer_id: int
    external_id: str
    email: str | None = None
    name: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    hourly_counts: dict[int, dict[str, int]] = Field(
        default_factory=dict,
        description="Event counts per type in each hour (epoch hour) of the last 7 days.",
    )


class CustomerSignals(CustomerProfile):
    """A customer's live profile, owned by the signals agent (one writer per key): the
    customer's profile and the agent's bookkeeping (when rules fired, the last record
    applied, where its event ids are kept).

    Kept in the Faust table ``signals`` keyed ``<tenant_id>:<external id>``; each
    update goes to the table's changelog topic, which the sink projects into PostgreSQL.
    """

    schema_version: Literal[1] = 1
    rules_fired_at: dict[str, UtcDatetime] = Field(
        default_factory=dict, description="When each trigger rule last asked for an offer."
    )
    last_offer_requested_at: UtcDatetime | None = None
    source_offset: int = Field(
        -1, description="Offset of the last proffer.events record applied (one partition per key)."
    )
    id_chunks: dict[int, int] | None = Field(
        None,
        description="Days (epoch day) whose counted event ids the event-ids table keeps, with"
        " their chunks; None (a profile from before): every day of the window is looked up.",
    )
    updated_at: UtcDatetime | None = None

    def profile(self) -> CustomerProfile:
        """The customer's :class:`CustomerProfile`: a copy, without the bookkeeping."""
        return CustomerProfile.model_validate(self.model_dump(include=_PROFILE_FIELDS))


_PROFILE_FIELDS = set(CustomerProfile.model_fields)


class CustomerColumns(BaseModel):
    """The fields of a :class:`CustomerSignals` that the ``customers`` table keeps in
    columns: what the sink reads of a changelog value (it stores the whole value as
    JSON), in about 60% of the time it takes to read the whole profile."""

    model_config = ConfigDict(extra="ignore")

    tenant_id: TenantId
    customer_id: int
    external_id: str
    email: str | None = None
    name: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    event_count: int = 0
    first_seen_at: UtcDatetime | None = None
    last_seen_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None


class WindowCounts(BaseModel):
    """Events in one rolling window, in all and per type."""

    events: int
    by_type: dict[str, int]


class SignalsView(Signals):
    """The signals as the API shows them, with what is computed at read time."""

    distinct_pages: int
    windows: dict[str, WindowCounts] = Field(description="Counts in the last 24 hours and 7 days.")


class CustomerView(BaseModel):
    """A customer as the API shows them."""

    id: int
    external_id: str
    email: str | None
    name: str | None
    metadata: dict[str, Any]
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    signals: SignalsView
