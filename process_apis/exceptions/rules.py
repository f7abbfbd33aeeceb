"""Pure decisions about work items: which status changes an action may make."""

from __future__ import annotations

from app.errors import Conflict

# Resolved is final: if the problem comes back, a new exception opens (one open row per code and subject).
_ALLOWED = {
    ("open", "acknowledged"),
    ("acknowledged", "acknowledged"),
    ("open", "resolved"),
    ("acknowledged", "resolved"),
    ("resolved", "resolved"),
}


def check_transition(current: str, wanted: str) -> bool:
    """True when the action changes the status, False when it is a repeat; Conflict when it is not allowed."""
    if (current, wanted) not in _ALLOWED:
        raise Conflict(
            f"a {current} exception cannot be {wanted}; if the problem recurs, a new exception opens",
            "EXCEPTION_RESOLVED" if current == "resolved" else "INVALID_TRANSITION",
        )
    return current != wanted
