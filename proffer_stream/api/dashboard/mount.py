"""How the dashboard is mounted on the gateway: its pages, static files, shared state."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from proffer_stream.api.dashboard.cache import TtlCache
from proffer_stream.api.dashboard.pulse import Pulse
from proffer_stream.api.dashboard.routes import ROUTERS
from proffer_stream.api.dashboard.routes.overview import OVERVIEW_SECONDS
from proffer_stream.api.dashboard.web import (
    HERE,
    SIGN_IN_PATH,
    DashboardError,
    SignInRequired,
    render,
    session_viewer,
)


def install(app: FastAPI) -> None:
    """Mount the dashboard's pages and static files on the gateway."""
    app.state.dashboard_pulse = Pulse()
    app.state.dashboard_overviews = TtlCache[object](OVERVIEW_SECONDS)
    app.mount("/dashboard/static", StaticFiles(directory=HERE / "static"), name="dashboard")
    for router in ROUTERS:
        app.include_router(router)

    @app.exception_handler(DashboardError)
    async def refused(request: Request, error: DashboardError) -> Response:
        viewer = await session_viewer(request)
        return render(request, viewer, "error.html", error.status, message=error.message)

    @app.exception_handler(SignInRequired)
    async def sign_in_first(request: Request, _: SignInRequired) -> Response:
        if request.headers.get("hx-request"):
            return Response(status_code=204, headers={"HX-Redirect": SIGN_IN_PATH})
        return RedirectResponse(SIGN_IN_PATH, status_code=303)
