"""The bodies of the personalised offers API (the billing platform's fields), as read
from JSON or from a form."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, field_validator
from pydantic_core import from_json

from proffer_stream.catalog.periods import zone
from proffer_stream.core.limits import check_json, no_nul
from proffer_stream.core.types import ExternalId, StrictModel
from proffer_stream.decisions.context import normal_locale

Short = Annotated[str, Field(max_length=2_000), AfterValidator(no_nul)]
Name = Annotated[str, Field(max_length=200), AfterValidator(no_nul)]
Id = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(no_nul)]


def _json_object(value: Any) -> Any:
    """``custom`` given as a JSON string (as forms must send it) read as its object."""
    if isinstance(value, str):
        try:  # pydantic's parser: a depth limit where json.loads recursed until it crashed
            value = from_json(value)
        except ValueError:
            raise ValueError('custom must be a JSON object, e.g. {"plan": "pro"}') from None
    return value


def _storable(value: dict[str, Any]) -> dict[str, Any]:
    check_json(value)
    return value


class RequestContextIn(StrictModel):
    """Where the customer is: the page, its referrer, their browser, locale and zone."""

    timezone: Name | None = None
    url: Short | None = None
    referrer_url: Short | None = None
    user_agent: Short | None = None
    locale: Annotated[str, Field(max_length=40)] | None = None

    @field_validator("locale")
    @classmethod
    def _locale(cls, value: str | None) -> str | None:
        return None if value is None else normal_locale(value)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is not None:
            zone(value)
        return value


class PersonalizedOffersBody(StrictModel):
    """``POST /api/v2/personalized_offers``: who, and in what context."""

    customer_id: ExternalId
    first_name: Name | None = None
    last_name: Name | None = None
    email: Short | None = None
    roles: list[Name] = Field(default_factory=list, max_length=50)
    external_user_id: Short | None = None
    subscription_id: Short | None = None
    custom: Annotated[dict[str, Any], BeforeValidator(_json_object), AfterValidator(_storable)] = (
        Field(default_factory=dict)
    )
    request_context: RequestContextIn = Field(default_factory=RequestContextIn)


class OfferEventBody(StrictModel):
    """``POST /api/v2/offer_events``: the customer saw or dismissed a decision's offer."""

    personalized_offer_id: Id
    type: Literal["viewed", "dismissed"]


class FulfillmentBody(StrictModel):
    """``POST /api/v2/offer_fulfillments``: the customer accepted one of the options."""

    personalized_offer_id: Id
    option_id: Id


class FulfillmentUpdate(StrictModel):
    """``POST /api/v2/offer_fulfillments/{id}``: how the fulfilment ended."""

    status: Literal["completed", "failed"]
    failure_reason: Annotated[str, Field(max_length=1_000), AfterValidator(no_nul)] | None = None
