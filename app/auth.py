"""API clients: random bearer keys stored as SHA-256 hashes, each with one role.

Keys carry 256 bits of randomness, so a fast hash is enough (no password stretching
needed) and lookups stay one indexed query.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from app.db import Connection, Database
from app.errors import Forbidden, Unauthorized, ValidationFailed
from app.problems import problem, problem_response

__all__ = [
    "ROLES",
    "ApiClient",
    "AuthMiddleware",
    "create_client",
    "find_client_by_key",
    "hash_key",
    "require_role",
]

ROLES = ("admin", "integration", "finance", "project_manager", "customer", "bi")
_KEY_PREFIX = "psb_"


@dataclass(frozen=True)
class ApiClient:
    id: uuid.UUID
    name: str
    role: str
    customer_external_id: str | None = None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def require_role(client: ApiClient, roles: Sequence[str]) -> None:
    if client.role != "admin" and client.role not in roles:
        raise Forbidden(f"role {client.role!r} may not do this; allowed: {', '.join(sorted({'admin', *roles}))}")


async def create_client(
    conn: Connection, name: str, role: str, customer_external_id: str | None = None
) -> tuple[ApiClient, str]:
    """Create a client and return it with its key: the only time the key is visible."""
    if role not in ROLES:
        raise ValidationFailed(f"role must be one of {', '.join(ROLES)}", code="INVALID_ROLE")
    if (role == "customer") != (customer_external_id is not None):
        raise ValidationFailed("a customer key needs --customer, and only a customer key takes one")
    key = _KEY_PREFIX + secrets.token_urlsafe(32)
    client = ApiClient(uuid.uuid4(), name, role, customer_external_id)
    await conn.execute(
        """insert into api_client (id, name, role, customer_external_id, key_prefix, key_hash)
           values ($1, $2, $3, $4, $5, $6)""",
        client.id,
        name,
        role,
        customer_external_id,
        key[:10],
        hash_key(key),
    )
    return client, key


async def find_client_by_key(conn: Connection, key: str) -> ApiClient | None:
    row = await conn.fetchrow(
        """select id, name, role, customer_external_id from api_client
           where key_hash = $1 and revoked_at is null""",
        hash_key(key),
    )
    return ApiClient(**dict(row)) if row else None


class _KeyCache:
    """A few seconds of memory per key: saves a query per request; revocation lags by ``ttl``."""

    def __init__(self, ttl: float = 5.0, size: int = 10_000) -> None:
        self.ttl, self.size = ttl, size
        self._items: dict[str, tuple[float, ApiClient]] = {}

    def get(self, key_hash: str) -> ApiClient | None:
        hit = self._items.get(key_hash)
        if hit and hit[0] > time.monotonic():
            return hit[1]
        return None

    def put(self, key_hash: str, client: ApiClient) -> None:
        if len(self._items) >= self.size:
            self._items.clear()
        self._items[key_hash] = (time.monotonic() + self.ttl, client)


class AuthMiddleware:
    """Resolves ``Authorization: Bearer`` into ``request.state.client``; 401 when absent or unknown."""

    def __init__(self, app: ASGIApp, public_paths: Sequence[str]) -> None:
        self.app = app
        self.public_paths = tuple(public_paths)
        self.cache = _KeyCache()

    def _is_public(self, scope: Scope) -> bool:
        path: str = scope["path"]
        if scope["method"] == "GET" and path == "/graphql":
            return True  # the GraphiQL page; queries themselves need a key
        return any(path == p or (p.endswith("/") and path.startswith(p)) for p in self.public_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._is_public(scope):
            await self.app(scope, receive, send)
            return
        header = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
        scheme, _, key = header.partition(" ")
        client = None
        if scheme.lower() == "bearer" and key.strip():
            key_hash = hash_key(key.strip())
            client = self.cache.get(key_hash)
            if client is None:
                database: Database = scope["app"].state.services.db
                async with database.connection() as conn:
                    client = await find_client_by_key(conn, key.strip())
                if client is not None:
                    self.cache.put(key_hash, client)
        if client is None:
            detail = "a valid bearer API key is required" if header else "missing Authorization header"
            response = problem_response(
                problem(401, detail, Unauthorized().code), {"WWW-Authenticate": 'Bearer realm="psbridge"'}
            )
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["client"] = client
        await self.app(scope, receive, send)
