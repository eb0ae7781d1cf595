"""What a dashboard form shows after it ran one of the API's own handlers: the page
again, with what became of the change."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi.responses import HTMLResponse, Response

from proffer_stream.api.dashboard import forms
from proffer_stream.api.errors import ApiError

Page = Callable[..., Awaitable[HTMLResponse]]
"""The form's page, made with keyword arguments: ``errors``, ``notice``, ``status`` and
what the editor keeps (its text, the item edited)."""


async def shown_after(call: Awaitable[Any], page: Page, done: str, **kept: Any) -> HTMLResponse:
    """Run the API handler ``call`` and show ``page`` with its outcome: ``done`` when it
    succeeded; a refusal's message (422 beside the field it names, 409, 404) with the
    refusal's status, keeping the editor's text; a 202 as still being applied."""
    try:
        answer = await call
    except ApiError as exc:
        errors = [forms.FieldError(d.loc, d.message) for d in exc.body.error.details]
        errors = errors or [forms.FieldError("document", exc.body.error.message)]
        return await page(errors=errors, status=exc.status, **kept)
    if isinstance(answer, Response) and answer.status_code >= 300:
        if answer.status_code == 202:
            return await page(notice="Accepted; still being applied.")
        message = json.loads(bytes(answer.body))["error"]["message"]
        return await page(notice=f"Not done: {message}", status=answer.status_code, **kept)
    return await page(notice=done)
