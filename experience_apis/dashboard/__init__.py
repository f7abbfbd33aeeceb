"""The operations dashboard page (a placeholder until the experience-layer issue fills it)."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

_PAGE = Path(__file__).with_name("dashboard.html")
CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; base-uri 'none'"


async def dashboard_page(request: Request) -> Response:
    return HTMLResponse(_PAGE.read_text(), headers={"Content-Security-Policy": CSP})


routes = [Route("/dashboard", dashboard_page)]
