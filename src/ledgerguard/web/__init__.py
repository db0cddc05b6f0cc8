"""The analyst app: alert queue, cases, decisions that become labels, audit trail, charts.

Server-rendered by the API's own FastAPI app (Jinja2 templates, htmx for partial updates) under
`/review`; browser assets are vendored in `static/vendor` (see scripts/vendor-assets.sh), never
loaded from a CDN. `ledgerguard.web.mount.install` adds it to the app factory's app.
"""
