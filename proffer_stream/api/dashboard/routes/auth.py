"""Signing in (with an API key, or a one-time link) and out."""

from __future__ import annotations

import hmac
import secrets
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
SIGN_IN_COOKIE = "proffer_sign_in"
SIGN_IN_FORM_SECONDS = 3600
"""How long a sign-in page's form may be sent."""


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
    """Sign in with an API key: the session names the key by its hash, never holds it.

    The form must carry the token its page set in a SameSite=Strict cookie (a double
    submit): a page of another site cannot sign a browser into its own tenant."""
    fields = await read_form(request)
    given, expected = forms.first(fields, "sign_in_token"), request.cookies.get(SIGN_IN_COOKIE)
    if not given or not expected or not hmac.compare_digest(given, expected):
        return _form(request, "The sign-in form expired; sign in again.", 403)
    key = forms.first(fields, "api_key")
    if not key or await services_of(request).keys.owner_of(key) is None:
        return _form(request, "This API key is not valid or was revoked.", 401)
    response = signed_in_redirect(request, new_session(keys.hash_key(key), time.time()))
    response.delete_cookie(SIGN_IN_COOKIE, path=SIGN_IN_PATH, httponly=True, samesite="strict")
    return response


@router.post("/dashboard/sign-out")
async def sign_out(_viewer: SignedIn, _fields: Form) -> Response:
    response = RedirectResponse(SIGN_IN_PATH, status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


def _form(request: Request, error: str | None, status_code: int = 200) -> Response:
    """The sign-in page, with a fresh token in its form and in a cookie only this site's
    pages send back."""
    token = secrets.token_urlsafe(24)
    response = render(
        request, None, "sign_in.html", status_code, error=error, page="sign-in", token=token
    )
    response.set_cookie(
        SIGN_IN_COOKIE,
        token,
        max_age=SIGN_IN_FORM_SECONDS,
        path=SIGN_IN_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response
