"""The operators' dashboard: server-rendered pages (Jinja2, htmx, Chart.js vendored in
``static/``) served by the gateway under ``/dashboard``, scoped to the signed-in key's
tenant and calling the same functions as the API."""
