"""JSON request bodies read once, bounded and strictly, with answers that say what is wrong.

FastAPI reads a route's JSON body with :func:`json.loads`: a body that is not JSON is a
422 "JSON decode error" at ``body[0]``, one that is not UTF-8 or nests too deep is a 400
``http_error`` ("There was an error parsing the body"), and a lone surrogate escape
(``"\\ud800"``) is taken, a string PostgreSQL and Kafka's JSON then refuse. Routes of
:class:`JsonBodyRoute` read the body first, at most ``PROFFER_MAX_BODY_BYTES`` (413 past
it, as the webhook), and parse it with pydantic's parser (jiter, the one the webhook
uses), which refuses lone surrogates and nesting deeper than 200 levels; every failure is
a 400 ``invalid_json`` naming the line and column. FastAPI then validates what was parsed
(Starlette's ``Request.json`` returns the value this sets).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic_core import from_json

from proffer_stream.api.errors import ApiError
from proffer_stream.api.models import ErrorDetail
from proffer_stream.core.types import ascii_number

MAX_DEPTH = 200
"""How deep the parser lets JSON nest (jiter's limit); no request model nests nearly so."""

_CLEARER = {
    "unexpected end of hex escape": "an invalid \\u escape (a lone surrogate, \\ud800-\\udfff"
    " not in a pair, or fewer than four hex digits)",
    "recursion limit exceeded": f"nesting deeper than {MAX_DEPTH} levels",
}


def parse_json(body: bytes) -> Any:
    """``body`` as JSON, or a 400 ``invalid_json`` saying what is wrong and where."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        message = (
            f"not UTF-8: byte {error.start} ({body[error.start]:#04x}) cannot start a character"
        )
        raise _invalid(message) from None
    try:
        return from_json(text)
    except ValueError as error:
        raise _invalid(_clearer(str(error))) from None


def _clearer(message: str) -> str:
    for said, meant in _CLEARER.items():
        if message.startswith(said):
            return meant + message[len(said) :]
    return message


def _invalid(why: str) -> ApiError:
    return ApiError(
        400,
        "invalid_json",
        f"The body is not valid JSON: {why}.",
        [ErrorDetail(loc="body", message=why)],
    )


async def read_body(request: Request, limit: int, hint: str = "PROFFER_MAX_BODY_BYTES") -> bytes:
    """The request's body, refused with 413 past ``limit`` bytes (read no further);
    ``hint`` says what to do or which setting it is."""
    too_large = ApiError(
        413,
        "body_too_large",
        f"The request body is larger than {limit} bytes ({hint}).",
        [ErrorDetail(loc="body", message=f"at most {limit} bytes")],
    )
    declared = request.headers.get("content-length")
    length = ascii_number(declared) if declared else None
    if length is not None and length > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


def _is_json(content_type: str | None) -> bool:
    """What FastAPI reads as JSON: no content type, ``application/json`` or ``+json``."""
    if not content_type:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class JsonBodyRoute(APIRoute):
    """A route whose JSON body is read bounded and parsed strictly (see the module)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler

        async def route(request: Request) -> Response:
            limit = request.app.state.services.settings.max_body_bytes
            body = await read_body(request, limit)
            request._body = body  # what FastAPI's handler reads: the stream is spent
            if body and _is_json(request.headers.get("content-type")):
                request._json = parse_json(body)
            return await handler(request)

        return route
