"""Offline GraphiQL page for browser GETs of ``/graphql``.

Assets are vendored under ``experience_apis/static/graphiql/`` (npm ``graphiql@3.9.0`` UMD build,
``react``/``react-dom@18.3.1`` UMD; all MIT) and are expected to be served by
``StaticFiles(directory=STATIC_DIR)`` mounted at ``static_prefix`` (normally
``/static/experience``). The page has a small API-key bar: the key is kept in sessionStorage and
sent as ``Authorization: Bearer <key>``. No inline script, so it works under ``GRAPHIQL_CSP``.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

GRAPHIQL_VERSION = "3.9.0"
REACT_VERSION = "18.3.1"

STATIC_DIR = Path(__file__).resolve().parent / "static"

# Paths relative to STATIC_DIR (and to static_prefix in URLs) that the page references.
GRAPHIQL_ASSETS: tuple[str, ...] = (
    "graphiql/graphiql.min.css",
    "graphiql/graphiql-page.css",
    "graphiql/react.production.min.js",
    "graphiql/react-dom.production.min.js",
    "graphiql/graphiql.min.js",
    "graphiql/graphiql-init.js",
)

# Content-Security-Policy the page works under (verified in headless Chromium with no violation,
# including interaction). No 'unsafe-inline' needed: the libraries only set styles through the CSSOM.
# The vendored CSS embeds its fonts/icons as data: URLs; API calls go to the same origin.
GRAPHIQL_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def _asset(static_prefix: str, rel: str) -> str:
    version = REACT_VERSION if "react" in rel else GRAPHIQL_VERSION
    return escape(f"{static_prefix.rstrip('/')}/{rel}?v={version}", quote=True)


def graphiql_html(endpoint: str, static_prefix: str, schema_url: str = "/graphql/schema.json") -> str:
    """Return the GraphiQL HTML page querying ``endpoint`` with assets from ``static_prefix``.

    GraphiQL reads the schema from ``schema_url`` (an introspection result) instead of sending its
    own introspection query, which is deeper than the depth limit allows.
    """
    css, page_css, react, react_dom, graphiql, init = (_asset(static_prefix, rel) for rel in GRAPHIQL_ASSETS)
    url = escape(endpoint, quote=True)
    schema = escape(schema_url, quote=True)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>psbridge GraphiQL</title>
<link rel="stylesheet" href="{css}">
<link rel="stylesheet" href="{page_css}">
</head>
<body>
<form id="psb-auth" class="psb-auth" autocomplete="off">
<label for="psb-key">API key</label>
<input id="psb-key" name="psb-key" type="password" autocomplete="off" spellcheck="false"
 placeholder="sent as Authorization: Bearer &lt;key&gt; (kept in this tab only)">
<button type="submit">Use key</button>
<button type="button" id="psb-clear">Clear</button>
<span id="psb-status" class="psb-status"></span>
</form>
<div id="graphiql" data-endpoint="{url}" data-schema-url="{schema}">Loading GraphiQL&hellip;</div>
<noscript>GraphiQL needs JavaScript. POST GraphQL queries to {url} instead.</noscript>
<script src="{react}"></script>
<script src="{react_dom}"></script>
<script src="{graphiql}"></script>
<script src="{init}"></script>
</body>
</html>
"""
