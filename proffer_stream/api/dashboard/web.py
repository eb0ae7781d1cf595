"""What every dashboard page shares: the signed-in viewer, CSRF-checked forms, the
templates, and how the dashboard is mounted on the gateway."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import jinja2
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from proffer_stream.api.dashboard import forms
from proffer_stream.api.dashboard.pulse import Pulse
from proffer_stream.api.dashboard.session import (
    COOKIE,
    CSRF_FIELD,
    CSRF_HEADER,
    MAX_AGE_SECONDS,
    Session,
    csrf_valid,
    seal,
    session_secret,
    unseal,
)
from proffer_stream.api.services import Services
from proffer_stream.core.errors import ProfferError

HERE = Path(__file__).parent
TEMPLATES = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(["html"]),  # every value escaped, always
    )
)
SIGN_IN_PATH = "/dashboard/sign-in"
NAV = (
    ("overview", "/dashboard", "Overview"),
    ("queue", "/dashboard/queue", "Review queue"),
    ("customers", "/dashboard/customers", "Customers"),
    ("rules", "/dashboard/rules", "Rules and policy"),
    ("catalog", "/dashboard/catalog", "Catalog"),
    ("integrations", "/dashboard/integrations", "Integrations"),
    ("setup", "/dashboard/setup", "Setup"),
)


class SignInRequired(ProfferError):
    """No valid session: the browser goes to the sign-in page."""


class DashboardError(ProfferError):
    """A request the dashboard refuses, answered as a page saying why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Viewer:
    """Who is looking: the tenant and key name of the session's key, and the session."""

    tenant_id: str
    key_name: str
    session: Session


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def pulse_of(request: Request) -> Pulse:
    pulse: Pulse = request.app.state.dashboard_pulse
    pulse.ensure_running(services_of(request).replies)
    return pulse


def secret_of(request: Request) -> bytes:
    return session_secret(services_of(request).signing_key)


async def session_viewer(request: Request) -> Viewer | None:
    """The viewer of the request's session, if it has a valid one whose key still works
    (checked on every request through the key cache: a revoked key ends it within a
    second)."""
    cookie = request.cookies.get(COOKIE)
    session = unseal(cookie, secret_of(request), time.time()) if cookie else None
    if session is None:
        return None
    owner = await services_of(request).keys.owner_of_hash(session.key_hash)
    return None if owner is None else Viewer(owner.tenant_id, owner.name, session)


async def _viewer(request: Request) -> Viewer:
    viewer = await session_viewer(request)
    if viewer is None:
        raise SignInRequired("sign in first")
    return viewer


SignedIn = Annotated[Viewer, Depends(_viewer)]


async def _form(request: Request, viewer: SignedIn) -> dict[str, list[str]]:
    """The form's fields, once its CSRF token (field or header) is the session's."""
    fields = await read_form(request)
    given = request.headers.get(CSRF_HEADER) or forms.first(fields, CSRF_FIELD) or None
    if not csrf_valid(viewer.session, given):
        raise DashboardError(
            403,
            "This form is stale or did not come from this dashboard: reload the page, try again.",
        )
    return fields


async def read_form(request: Request) -> dict[str, list[str]]:
    """A url-encoded body's fields; 413 over the gateway's body limit."""
    limit = services_of(request).settings.max_body_bytes
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise DashboardError(413, f"The form is over {limit} bytes: send less at once.")
    return forms.form_fields(body)


Form = Annotated[dict[str, list[str]], Depends(_form)]


def render(
    request: Request, viewer: Viewer | None, template: str, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """A page, with what the layout needs: the viewer, the navigation, the CSRF token."""
    return TEMPLATES.TemplateResponse(
        request,
        template,
        {
            "viewer": viewer,
            "nav": NAV,
            "csrf": viewer.session.csrf if viewer else "",
            **context,
        },
        status_code=status_code,
    )


def signed_in_redirect(request: Request, session: Session, to: str = "/dashboard") -> Response:
    """Go to ``to`` with the session cookie set: signed, HttpOnly, SameSite=Strict."""
    response = RedirectResponse(to, status_code=303)
    response.set_cookie(
        COOKIE,
        seal(session, secret_of(request)),
        max_age=MAX_AGE_SECONDS,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response
