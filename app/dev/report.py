"""What ``psbridge`` prints about a failure: one line, never a traceback (that goes to a log file)."""

from __future__ import annotations

import traceback
from pathlib import Path

__all__ = ["one_line", "redact", "write_traceback"]

MAX_LINE = 300


def one_line(exc: BaseException) -> str:
    """``Type: message`` with the message's lines joined, cut to a terminal-friendly length."""
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= MAX_LINE else text[: MAX_LINE - 3] + "..."


def redact(url: str) -> str:
    """A database or Redis URL without its credentials."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}" if sep else url


def write_traceback(exc: BaseException, path: Path) -> Path | None:
    """Write ``exc``'s traceback to ``path`` (replacing the last one); the path, or None if it cannot be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(traceback.format_exception(exc)))
    except OSError:
        return None
    return path
