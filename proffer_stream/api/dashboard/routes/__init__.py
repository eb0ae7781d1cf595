"""The dashboard's pages, one module a page."""

from proffer_stream.api.dashboard.routes import (
    auth,
    catalog,
    customers,
    integrations,
    overview,
    queue,
    rules,
    setup,
)

ROUTERS = [
    r.router for r in (auth, overview, queue, customers, rules, catalog, integrations, setup)
]
