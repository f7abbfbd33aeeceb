"""``Idempotency-Key`` on POST: the same key and body replay the first response.

Same key with another body is a 422 (``IDEMPOTENCY_KEY_REUSED``); the same key while the
first request is still running is a 409 (``IDEMPOTENCY_KEY_IN_USE``). Keys are scoped to
the API client and kept 24 hours. 5xx answers are not kept, so the client may retry.
The row is the lock, so this holds across any number of API processes.
"""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.db import Database
from app.problems import problem, problem_response

__all__ = ["IdempotencyMiddleware"]

KEEP = timedelta(hours=24)
# A request still "in flight" after this long died with its process: let a retry take over.
ABANDONED_AFTER = timedelta(minutes=5)
_STORED_HEADERS = {b"content-type", b"location"}
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]+")


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = dict(scope.get("headers", [])).get(b"idempotency-key")
        client = scope.get("state", {}).get("client")
        # An empty header is a key the client meant to send: refused below, never silently ignored.
        if scope["type"] != "http" or scope["method"] != "POST" or key is None or client is None:
            await self.app(scope, receive, send)
            return
        key_text = key.decode("latin-1").strip()
        if not 1 <= len(key_text) <= 255 or not _PRINTABLE_ASCII.fullmatch(key_text):
            await problem_response(
                problem(422, "Idempotency-Key must be 1 to 255 printable ASCII characters", "INVALID_IDEMPOTENCY_KEY")
            )(scope, receive, send)
            return

        body = await _read_body(receive)
        if body is None:
            return  # the client went away mid-body: nothing to run, nothing to claim
        digest = hashlib.sha256(
            scope["method"].encode()
            + b" "
            + scope["path"].encode()
            + b"?"
            + scope.get("query_string", b"")
            + b"\n"
            + body
        ).hexdigest()

        database: Database = scope["app"].state.services.db
        claimed = await _claim(database, client.id, key_text, scope, digest)
        if claimed is not None:
            await claimed(scope, receive, send)
            return

        status, headers, chunks = 500, [], []
        body_sent = False

        async def replay_body() -> Message:
            # The body once, as read; after that the real channel (a disconnect waits there).
            nonlocal body_sent
            if body_sent:
                return await receive()
            body_sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def capture(message: Message) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [h for h in message.get("headers", []) if h[0].lower() in _STORED_HEADERS]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, replay_body, capture)
        except BaseException:
            await _release(database, client.id, key_text)
            raise
        if status >= 500:
            await _release(database, client.id, key_text)
        else:
            await _store(database, client.id, key_text, status, headers, b"".join(chunks))


async def _claim(database: Database, client_id: object, key: str, scope: Scope, digest: str) -> ASGIApp | None:
    """Take the key for this request, or return the response that must be sent instead."""
    while True:
        # Single statements in autocommit: the row is the lock, no transaction needed around it.
        async with database.connection() as conn:
            inserted = await conn.fetchval(
                """insert into idempotency_key (client_id, key, method, path, request_hash, state, expires_at)
                   values ($1, $2, $3, $4, $5, 'in_flight', now() + $6::interval)
                   on conflict (client_id, key) do update
                      set method = excluded.method, path = excluded.path,
                          request_hash = excluded.request_hash, state = 'in_flight',
                          response_status = null, response_headers = null, response_body = null,
                          created_at = now(), expires_at = excluded.expires_at
                    where idempotency_key.expires_at < now()
                       or (idempotency_key.state = 'in_flight'
                           and idempotency_key.created_at < now() - $7::interval)
                   returning true""",
                client_id,
                key,
                scope["method"],
                scope["path"],
                digest,
                KEEP,
                ABANDONED_AFTER,
            )
            if inserted:
                return None
            row = await conn.fetchrow("select * from idempotency_key where client_id = $1 and key = $2", client_id, key)
        if row is not None:
            break
        # The holder released it (a 5xx) between our insert and our read: try to take it again.
    if row["request_hash"] != digest:
        return problem_response(
            problem(422, "this Idempotency-Key was used with a different request", "IDEMPOTENCY_KEY_REUSED")
        )
    if row["state"] == "in_flight":
        return problem_response(
            problem(409, "a request with this Idempotency-Key is still in flight", "IDEMPOTENCY_KEY_IN_USE"),
            {"Retry-After": "1"},
        )
    return _Replay(row["response_status"], row["response_headers"], row["response_body"])


async def _store(database: Database, client_id: object, key: str, status: int, headers: list, body: bytes) -> None:
    async with database.connection() as conn:
        await conn.execute(
            """update idempotency_key set state = 'done', response_status = $3,
                      response_headers = $4, response_body = $5
               where client_id = $1 and key = $2""",
            client_id,
            key,
            status,
            [[k.decode("latin-1"), v.decode("latin-1")] for k, v in headers],
            body,
        )


async def _release(database: Database, client_id: object, key: str) -> None:
    async with database.connection() as conn:
        await conn.execute(
            "delete from idempotency_key where client_id = $1 and key = $2 and state = 'in_flight'",
            client_id,
            key,
        )


class _Replay:
    def __init__(self, status: int, headers: list[list[str]], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in self.headers]
        headers += [(b"idempotent-replayed", b"true"), (b"content-length", str(len(self.body)).encode())]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


async def _read_body(receive: Receive) -> bytes | None:
    """The whole body, or None when the client disconnected before sending all of it."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)
