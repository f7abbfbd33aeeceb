"""Offline Swagger UI page for ``/docs``.

Assets are vendored under ``app/static/swagger/`` (npm ``swagger-ui-dist``, Apache-2.0) and are
expected to be served by ``StaticFiles(directory=STATIC_DIR)`` mounted at ``static_prefix``
(normally ``/static``). The page has no inline script or style, so it works under
``DOCS_CSP`` (``script-src 'self'``).
"""

from __future__ import annotations

from html import escape
from pathlib import Path

SWAGGER_UI_VERSION = "5.35.0"

STATIC_DIR = Path(__file__).resolve().parent / "static"

# Paths relative to STATIC_DIR (and to static_prefix in URLs) that the page references.
SWAGGER_ASSETS: tuple[str, ...] = (
    "swagger/swagger-ui.css",
    "swagger/swagger-page.css",
    "swagger/swagger-ui-bundle.js",
    "swagger/swagger-init.js",
)

# Content-Security-Policy the page works under (verified in headless Chromium with no violation,
# including interaction). No 'unsafe-inline' needed: the libraries only set styles through the CSSOM.
# The vendored CSS embeds its fonts/icons as data: URLs; API calls go to the same origin.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def _asset(static_prefix: str, rel: str) -> str:
    return escape(f"{static_prefix.rstrip('/')}/{rel}?v={SWAGGER_UI_VERSION}", quote=True)


def swagger_html(openapi_url: str, static_prefix: str) -> str:
    """Return the Swagger UI HTML page loading ``openapi_url`` with assets from ``static_prefix``."""
    css, page_css, bundle, init = (_asset(static_prefix, rel) for rel in SWAGGER_ASSETS)
    spec = escape(openapi_url, quote=True)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>psbridge API docs</title>
<link rel="stylesheet" href="{css}">
<link rel="stylesheet" href="{page_css}">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{spec}">Loading API documentation&hellip;</div>
<noscript>Swagger UI needs JavaScript. The raw spec is at <a href="{spec}">{spec}</a>.</noscript>
<script src="{bundle}"></script>
<script src="{init}"></script>
</body>
</html>
"""
