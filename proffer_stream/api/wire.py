"""The billing platform's wire format: a JSON body, or a form-encoded one with bracket
keys (``request_context[url]=...``, ``roles[0]=admin``), and its API key as the HTTP
Basic username. What its client libraries send, read as one nested dict."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request

from proffer_stream.api.errors import ApiError
from proffer_stream.api.json_body import parse_json
from proffer_stream.api.json_body import read_body as read_bounded
from proffer_stream.api.models import ErrorDetail
from proffer_stream.core.types import ascii_number

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_PART = re.compile(r"\[([^\[\]]*)\]")
MOST_FIELDS = 1_000
MOST_DEPTH = 8
"""Most brackets a form field name may have (``a[b][0]`` has two)."""
HEADER_CHARS = 2_000
"""How much of a header becomes a decision's context (a page's URL, a user agent)."""


def invalid(loc: str, message: str) -> ApiError:
    """A 422 naming the field."""
    return ApiError(
        422, "validation_error", "Invalid request.", [ErrorDetail(loc=loc, message=message)]
    )


def key_of(authorization: str) -> str | None:
    """The API key of an ``Authorization`` header: ``Bearer <key>``, or HTTP Basic with
    the key as the username (the password is ignored, as the billing platform does)."""
    scheme, _, value = authorization.partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return value or None
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[0] or None


def header(request: Request, name: str) -> str | None:
    """A request header as context: at most :data:`HEADER_CHARS` of it."""
    value = request.headers.get(name)
    return None if value is None else value[:HEADER_CHARS]


async def read_body(request: Request, most_bytes: int) -> dict[str, Any]:
    """The request's body as a dict: JSON, or form-encoded with bracket keys (read no
    further than ``most_bytes``: 413 past them)."""
    body = await read_bounded(request, most_bytes)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        parsed = parse_json(body) if body else {}
        if not isinstance(parsed, dict):
            raise invalid("body", "the body must be a JSON object")
        return parsed
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise invalid("body", "a form body must be UTF-8") from None
    return form_fields(text)


def form_fields(text: str) -> dict[str, Any]:
    """A form body as nested data: ``a[b]=1`` is ``{"a": {"b": "1"}}``, ``a[0]=x`` and
    ``a[]=x`` are lists. A malformed body is a 422 naming where."""
    try:
        pairs = parse_qsl(
            text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=MOST_FIELDS
        )
    except ValueError as exc:
        raise invalid("body", f"not a form body: {exc}") from None
    root: dict[str, Any] = {}
    for key, value in pairs:
        found = _KEY.match(key)
        if found is None:
            raise invalid("body", f"{key!r} is not a field name ('name', 'a[b]' or 'a[0]')")
        path = [found.group(1), *_PART.findall(found.group(2))]
        if len(path) > MOST_DEPTH + 1:
            raise invalid("body", f"{key[:100]!r} is nested deeper than {MOST_DEPTH} brackets")
        _put(root, path, value, key)
    nested: dict[str, Any] = _lists(root)
    return nested


def _put(node: dict[str, Any], path: list[str], value: str, key: str) -> None:
    for depth, step in enumerate(path[:-1]):
        child = node.setdefault(step, {})
        if not isinstance(child, dict):
            raise invalid(_loc(path[: depth + 1]), f"{key!r} sets inside a value given already")
        node = child
    last = path[-1]
    if last == "":
        last = str(sum(1 for k in node if _is_index(k) or k == ""))
    if last in node:
        raise invalid(_loc(path), f"{key!r} is given twice")
    node[last] = value


def _lists(node: Any) -> Any:
    """Dicts whose keys are all indexes as lists, in index order."""
    if not isinstance(node, dict):
        return node
    items = {k: _lists(v) for k, v in node.items()}
    if items and all(_is_index(k) for k in items):
        return [items[k] for k in sorted(items, key=int)]
    return items


def _is_index(key: str) -> bool:
    """``0``, ``12``: a list index (ASCII digits, as ``int`` reads; ``²`` is a name)."""
    return ascii_number(key, 6) is not None


def _loc(path: list[str]) -> str:
    return "body." + ".".join(path)
