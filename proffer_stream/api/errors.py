"""Errors answered as JSON: ``{"success": false, "error": {code, message, details}}``, or,
under the placement offers API, that API's ``{"errors": [...]}``."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from proffer_stream.api.models import (
    PLACEMENTS_PREFIX,
    ErrorBody,
    ErrorDetail,
    ErrorResponse,
    PlacementError,
    PlacementErrors,
)
from proffer_stream.core.errors import ProfferError
from proffer_stream.db.pool import TRANSIENT_ERRORS
from proffer_stream.ingest.records import error_location

log = logging.getLogger(__name__)


class ApiError(ProfferError):
    """An error answered as JSON with its HTTP status."""

    def __init__(
        self, status: int, code: str, message: str, details: list[ErrorDetail] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = ErrorResponse(
            error=ErrorBody(code=code, message=message, details=details or [])
        )


def error_details(errors: Sequence[Any], body: object = None) -> list[ErrorDetail]:
    """Pydantic errors as details, each saying where (``events[1].type``) and what.

    An error inside a list item of the body that has an ``id`` (a rule) names it too.
    """
    return [
        ErrorDetail(
            loc=error_location(tuple(error["loc"])),
            message=_named(tuple(error["loc"]), body) + error["msg"],
        )
        for error in errors
    ]


def _named(loc: tuple[Any, ...], body: object) -> str:
    """``'rule "x": '`` for an error inside ``body``'s list item of id "x", else ''."""
    name = ""
    node = body
    for step in loc[1:] if loc[:1] == ("body",) else ():
        try:
            node = node[step]  # type: ignore[index]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(step, int) and isinstance(node, dict) and isinstance(node.get("id"), str):
            name = f'{"rule" if "rules" in loc else "item"} "{node["id"]}": '
    return name


def error_response(
    error: ApiError, headers: dict[str, str] | None = None, path: str = ""
) -> JSONResponse:
    """The JSON answer of ``error`` to a request for ``path``, with ``headers``; a 503
    says when to retry."""
    if error.status == 503:
        headers = {**(headers or {}), "Retry-After": "1"}
    body: Any = error.body
    if path.startswith(PLACEMENTS_PREFIX + "/"):
        body = placement_errors(error)
    return JSONResponse(body.model_dump(exclude_none=True), error.status, headers=headers)


def placement_errors(error: ApiError) -> PlacementErrors:
    """``error`` as the placement offers API answers errors: an item per invalid input
    (saying where), else one."""
    status, found = str(error.status), error.body.error
    items = [
        PlacementError(
            status=status,
            code=found.code,
            title=found.message,
            detail=detail.message,
            source=_source(detail.loc),
        )
        for detail in found.details
    ]
    return PlacementErrors(
        errors=items or [PlacementError(status=status, code=found.code, title=found.message)]
    )


def _source(loc: str) -> dict[str, str]:
    """``body.site`` -> a JSON pointer ``/site``; ``query.placement`` -> the parameter."""
    where, _, rest = loc.partition(".")
    if where == "body":
        return {"pointer": "/" + rest.replace("[", ".").replace("]", "").replace(".", "/")}
    if where in ("query", "path", "header") and rest:
        return {"parameter": rest}
    return {"pointer": ""}


METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
"""The methods a route of ours may take."""


def allowed_methods(request: Request) -> str:
    """The methods the app answers at the request's path, for a 405's ``Allow``.

    Starlette's 405 names only the methods of the first route of the path, and each of
    our routes has one method (``GET /api/rules`` and ``PUT /api/rules`` are two): each
    method is matched against every route, as the router would.
    """
    routes = request.app.router.routes
    return ", ".join(
        method
        for method in METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    )


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error as JSON: ours, invalid requests, Starlette's, database outages."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> JSONResponse:
        return error_response(error, path=request.url.path)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = error_details(exc.errors(), exc.body)
        if any(error["type"] == "json_invalid" for error in exc.errors()):
            error = ApiError(400, "invalid_json", "The body is not valid JSON.", details)
        else:
            error = ApiError(422, "validation_error", "Invalid request.", details)
        return error_response(error, path=request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        headers = {"Allow": allowed_methods(request)} if exc.status_code == 405 else None
        error = ApiError(exc.status_code, code, str(exc.detail))
        return error_response(error, headers, request.url.path)

    async def database_down(request: Request, exc: Exception) -> JSONResponse:
        log.warning("PostgreSQL unavailable: %r", exc)
        message = "The database is unavailable; retry later."
        return error_response(ApiError(503, "database_unavailable", message), path=request.url.path)

    for error_type in TRANSIENT_ERRORS:
        if issubclass(error_type, Exception):
            app.add_exception_handler(error_type, database_down)
