"""415 for a request body that is not JSON (docs/api.md: "A request body must be application/json").

Only ``application/json`` is accepted, with any parameters (``; charset=utf-8``), matched
case-insensitively; a ``charset`` other than UTF-8 is refused (RFC 8259: JSON between systems is
UTF-8). ``application/<x>+json`` types are refused too: no route implements their semantics
(``merge-patch+json`` is not a plain body) and the OpenAPI document lists only
``application/json``. A body in a content coding (gzip...) is refused as well, with
``Accept-Encoding: identity``. Requests without a body need no Content-Type at all.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import FieldError
from app.problems import problem, problem_response

__all__ = ["JSON_MEDIA_TYPE", "JsonBodyMiddleware"]

JSON_MEDIA_TYPE = "application/json"
_UTF8 = {"utf-8", "utf8"}
_DIGITS = re.compile(r"[0-9]+")


def _header_values(scope: Scope, name: bytes) -> list[str]:
    return [value.decode("latin-1") for key, value in scope["headers"] if key.lower() == name]


def _declares_body(scope: Scope) -> bool | None:
    """From the framing headers: True, False, or None when they say nothing (HTTP/2 may send neither)."""
    if _header_values(scope, b"transfer-encoding"):
        return True
    lengths = _header_values(scope, b"content-length")
    if not lengths:
        return None
    # A length that is not plain ASCII digits ("²" is a digit to str.isdigit) counts as a body.
    return any(not _DIGITS.fullmatch(length.strip()) or int(length) > 0 for length in lengths)


@dataclass(frozen=True)
class _Refusal:
    detail: str
    header: str
    msg: str
    headers: dict[str, str] = field(default_factory=dict)


def _refusal(content_types: Sequence[str], encodings: Sequence[str]) -> _Refusal | None:
    """Why the body's declared type is refused, or None when it is plain JSON."""
    expected = f"the request body must be JSON, sent with Content-Type: {JSON_MEDIA_TYPE}"
    must = f"must be {JSON_MEDIA_TYPE}"
    if not content_types:
        return _Refusal(f"{expected} (the request has a body but no Content-Type)", "Content-Type", "is missing")
    if len(content_types) > 1:
        return _Refusal(f"{expected} (the request has {len(content_types)} of them)", "Content-Type", "is repeated")
    media_type, *params = content_types[0].split(";")
    if media_type.strip().lower() != JSON_MEDIA_TYPE:
        shown = media_type.strip()[:100] or "an empty value"
        return _Refusal(f"{expected}, not {shown}", "Content-Type", must)
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in _UTF8:
            return _Refusal(f"{expected}; JSON is UTF-8", "Content-Type", "charset may only be utf-8")
    if any(coding.strip().lower() not in ("", "identity") for coding in ",".join(encodings).split(",")):
        return _Refusal(
            f"{expected}, without a Content-Encoding",
            "Content-Encoding",
            "is not supported",
            {"Accept-Encoding": "identity"},
        )
    return None


class JsonBodyMiddleware:
    """Answers 415 ``UNSUPPORTED_MEDIA_TYPE`` (problem+json naming the header) before the body is read."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        has_body = _declares_body(scope)
        if has_body is None:
            has_body, receive = await _peek_body(receive)
        refused = (
            _refusal(_header_values(scope, b"content-type"), _header_values(scope, b"content-encoding"))
            if has_body
            else None
        )
        if refused is None:
            await self.app(scope, receive, send)
            return
        errors = [FieldError(["header", refused.header], refused.msg)]
        body = problem(415, refused.detail, "UNSUPPORTED_MEDIA_TYPE", errors=errors)
        await problem_response(body, refused.headers)(scope, receive, send)


async def _peek_body(receive: Receive) -> tuple[bool, Receive]:
    """Read until the first body byte (or the end), then hand the same messages on to the app."""
    buffered: list[Message] = []
    while True:
        message = await receive()
        buffered.append(message)
        if message["type"] != "http.request" or message.get("body") or not message.get("more_body", False):
            break
    has_body = any(m["type"] == "http.request" and m.get("body") for m in buffered)

    async def replay() -> Message:
        return buffered.pop(0) if buffered else await receive()

    return has_body, replay
