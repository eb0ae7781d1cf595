"""Path and query parameters that several routes share, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

Limit = Annotated[int, Query(ge=1, le=100, description="How many to list.")]
Offset = Annotated[int, Query(ge=0, le=1_000_000, description="How many to skip.")]
OfferId = Annotated[int, Path(ge=1, lt=2**53, description="The offer's id.")]
CustomerId = Annotated[int, Path(ge=1, lt=2**53, description="Proffer's internal customer id.")]
CommandId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="The id the API answered with.",
    ),
]
CustomerIdQuery = Annotated[
    int | None, Query(ge=1, lt=2**53, description="Only this customer's (internal id).")
]
