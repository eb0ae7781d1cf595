"""``GET /api/decisions/{id}``: a decision with its trace, reactions and fulfilments."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import Response

from proffer_stream.api.catalog import json_answer
from proffer_stream.api.deps import AnyTenant, Db
from proffer_stream.api.errors import ApiError
from proffer_stream.api.models import ErrorResponse
from proffer_stream.db.decisions import decision_view

router = APIRouter(prefix="/api/decisions", tags=["decisions"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "No such decision for this tenant"}
}
DecisionId = Annotated[str, Path(min_length=1, max_length=100)]


@router.get("/{decision_id}", summary="A decision, its trace and reactions", responses=NOT_FOUND)
async def get_decision(decision_id: DecisionId, tenant_id: AnyTenant, db: Db) -> Response:
    """The decision as logged (context, every candidate and why it lost, the choice and
    its probability), the reactions to it in order, its fulfilments, and, when it chose
    one of the customer's offers, that offer's status and redemption."""
    view = await decision_view(db, tenant_id, decision_id)
    if view is None:
        raise ApiError(404, "decision_not_found", f"No decision {decision_id!r}.")
    return json_answer({"success": True, **view})
