"""HTTP bodies of the API that are not topic messages: answers, errors, key requests."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from proffer_stream.core.types import StrictModel, Text
from proffer_stream.db.keys import NewApiKey
from proffer_stream.ingest.models import NormalizedEvent
from proffer_stream.signals.models import CustomerView


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


class CustomerResponse(BaseModel):
    success: Literal[True] = True
    customer: CustomerView


class CustomersResponse(BaseModel):
    success: Literal[True] = True
    customers: list[CustomerView]
    limit: int
    offset: int


class EventsResponse(BaseModel):
    success: Literal[True] = True
    events: list[NormalizedEvent]
    limit: int
    offset: int


class ApiKeyCreate(StrictModel):
    name: Annotated[Text, Field(min_length=1, max_length=100)] = "API key"


class ApiKeyCreated(NewApiKey):
    success: Literal[True] = True


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, Literal["ok", "unavailable", "stalled"]] = Field(
        description="Each dependency: ok, unavailable, or (worker, sink) stalled: it has lag"
        " and has committed nothing for PROFFER_STALL_SECONDS. Details are in the log."
    )
