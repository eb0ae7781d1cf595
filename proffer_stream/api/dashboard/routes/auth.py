"""Signing in (with an API key, or a one-time link) and out."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from proffer_stream.api.dashboard import forms
from proffer_stream.api.dashboard.session import COOKIE, new_session
from proffer_stream.api.dashboard.web import (
    SIGN_IN_PATH,
    Form,
    SignedIn,
    read_form,
    render,
    services_of,
    session_viewer,
    signed_in_redirect,
)
from proffer_stream.db import dashboard, keys

router = APIRouter(include_in_schema=False)


@router.get("/")
async def root() -> Response:
    return RedirectResponse("/dashboard", status_code=307)


@router.get(SIGN_IN_PATH)
async def sign_in_page(request: Request, token: str | None = None) -> Response:
    """The sign-in form; with ``token``, a one-time link that signs in at once."""
    if token:
        key_hash = await dashboard.use_sign_in_token(services_of(request).pool, token[:200])
        if key_hash and await services_of(request).keys.owner_of_hash(key_hash):
            return signed_in_redirect(request, new_session(key_hash, time.time()))
        return _form(request, "This sign-in link was used already or has expired.", 401)
    if await session_viewer(request) is not None:
        return RedirectResponse("/dashboard", status_code=303)
    return _form(request, None)


@router.post(SIGN_IN_PATH)
async def sign_in(request: Request) -> Response:
    """Sign in with an API key: the session names the key by its hash, never holds it."""
    key = forms.first(await read_form(request), "api_key")
    if not key or await services_of(request).keys.owner_of(key) is None:
        return _form(request, "This API key is not valid or was revoked.", 401)
    return signed_in_redirect(request, new_session(keys.hash_key(key), time.time()))


@router.post("/dashboard/sign-out")
async def sign_out(_viewer: SignedIn, _fields: Form) -> Response:
    response = RedirectResponse(SIGN_IN_PATH, status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


def _form(request: Request, error: str | None, status_code: int = 200) -> Response:
    return render(request, None, "sign_in.html", status_code, error=error, page="sign-in")
