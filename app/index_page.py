"""``GET /``: where things are, as JSON (the default) or as a small HTML page for browsers.

Public like ``/healthz``: it names only public entry points. The page is self-contained (no
script, no external asset) and its one inline style is allowed by hash, so ``INDEX_CSP`` needs
no ``'unsafe-inline'``.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from html import escape

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

__all__ = ["INDEX_CSP", "LINKS", "index", "prefers_html"]


@dataclass(frozen=True)
class Link:
    href: str
    title: str
    key_required: bool = False


LINKS: dict[str, Link] = {
    "docs": Link("/docs", "API documentation (Swagger UI)"),
    "openapi": Link("/openapi.json", "OpenAPI 3.1 document"),
    "graphql": Link("/graphql", "GraphQL endpoint; GET opens GraphiQL, queries need a key"),
    "dashboard": Link("/dashboard", "Operations dashboard (asks for an API key)"),
    "health": Link("/healthz", "Liveness: the process is up"),
    "readiness": Link("/readyz", "Readiness: database and Redis reachable"),
    "metrics": Link("/metrics", "Prometheus metrics", key_required=True),
}

_STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#1b1f24}"
    "li{margin:.4rem 0}code{background:#f1f3f5;padding:0 .25rem}small{color:#57606a}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
INDEX_CSP = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def _html() -> str:
    items = "\n".join(
        f'<li><a href="{escape(link.href)}"><code>{escape(link.href)}</code></a> {escape(link.title)}'
        + (" <small>(needs a bearer API key)</small>" if link.key_required else "")
        + "</li>"
        for link in LINKS.values()
    )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>psbridge</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>psbridge</h1>
<p>Contracts, hours, expenses and milestones to invoices posted to the ERP, exactly once.</p>
<ul>
{items}
</ul>
</body>
</html>
"""


_PAGE = _html()


_QVALUE = re.compile(r"0(\.[0-9]{0,3})?|1(\.0{0,3})?")


def _quality(accept: str, media_type: str) -> float:
    """The q the Accept header gives ``media_type``: its most specific matching range wins."""
    kind = media_type.split("/")[0]
    best: tuple[int, float] = (-1, 0.0)
    for item in accept.split(","):
        media_range, *params = (part.strip().lower() for part in item.split(";"))
        specificity = {media_type: 2, f"{kind}/*": 1, "*/*": 0}.get(media_range)
        if specificity is None or specificity < best[0]:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                # RFC 9110 qvalue; anything else ("abc", "nan", "2") counts as "not acceptable"
                q = float(value) if _QVALUE.fullmatch(value.strip()) else 0.0
        best = (specificity, q)
    return best[1]


def prefers_html(accept: str | None) -> bool:
    """HTML only when the client ranks it above JSON (a browser does; curl's */* gets JSON)."""
    if not accept:
        return False
    html = _quality(accept, "text/html")
    return html > 0 and html > _quality(accept, "application/json")


async def index(request: Request) -> Response:
    headers = {"Vary": "Accept"}
    if prefers_html(request.headers.get("accept")):
        return HTMLResponse(_PAGE, headers={**headers, "Content-Security-Policy": INDEX_CSP})
    links = {
        name: {"href": link.href, "title": link.title, "key_required": link.key_required}
        for name, link in LINKS.items()
    }
    return JSONResponse({"name": "psbridge", "links": links}, headers=headers)
