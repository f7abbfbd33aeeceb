"""Composition of the sandbox: one Starlette app mounting every simulated backend."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import Mount

from sandbox import crm, erp, fx, psa, tax
from sandbox._http import error_handlers, plain_error
from sandbox.control import control_routes
from sandbox.state import SandboxState

__all__ = ["create_sandbox_app", "run"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8100


def create_sandbox_app() -> Starlette:
    """A fresh world per call: tests mount it in-process, `run` serves it."""
    state = SandboxState()
    routes = [
        *control_routes(state),
        Mount("/erp", app=erp.create_app(state)),
        Mount("/psa", app=psa.create_app(state)),
        Mount("/crm", app=crm.create_app(state)),
        Mount("/tax", app=tax.create_app(state)),
        Mount("/fx", app=fx.create_app(state)),
    ]
    app = Starlette(routes=routes, exception_handlers=error_handlers(plain_error))
    app.state.sandbox = state
    return app


def run(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Serve the sandbox until interrupted (`psbridge sandbox` calls this)."""
    import uvicorn  # imported here so in-process test use never needs the server

    # Access logs of every simulated backend call would drown the terminal of `make run`.
    uvicorn.run(create_sandbox_app(), host=host, port=port, log_level="warning")
