"""Composition of the sandbox: one Starlette app mounting every simulated backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import Mount

from sandbox import crm, erp, fx, psa, tax
from sandbox._http import error_handlers, plain_error
from sandbox.control import control_routes
from sandbox.persistence import StateFileError, StateSaver, load_state
from sandbox.state import SandboxState

__all__ = ["create_sandbox_app", "run"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8100


def create_sandbox_app(state_file: Path | None = None) -> Starlette:
    """A fresh world per call: tests mount it in-process, `run` serves it.

    With ``state_file`` the world is loaded from that file (when it exists) and saved back to it
    after changes and at shutdown; without one it lives in memory only.
    """
    state = SandboxState()
    saver = None
    if state_file is not None:
        load_state(state, state_file)
        saver = StateSaver(state, state_file)
        state.listeners.append(saver.changed)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        if saver is not None:
            saver.flush()

    routes = [
        *control_routes(state),
        Mount("/erp", app=erp.create_app(state)),
        Mount("/psa", app=psa.create_app(state)),
        Mount("/crm", app=crm.create_app(state)),
        Mount("/tax", app=tax.create_app(state)),
        Mount("/fx", app=fx.create_app(state)),
    ]
    app = Starlette(routes=routes, exception_handlers=error_handlers(plain_error), lifespan=lifespan)
    app.state.sandbox = state
    return app


def run(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, state_file: Path | None = None) -> None:
    """Serve the sandbox until interrupted (`psbridge sandbox` calls this)."""
    import uvicorn  # imported here so in-process test use never needs the server

    try:
        app = create_sandbox_app(state_file)
    except StateFileError as exc:
        raise SystemExit(f"error: sandbox state: {exc} (delete the file, or run psbridge dev --reset)") from None
    # Access logs of every simulated backend call would drown the terminal of `make run`.
    uvicorn.run(app, host=host, port=port, log_level="warning")
