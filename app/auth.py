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
from typing import cast

from starlette.types import ASGIApp, Receive, Scope, Send

from app.access import ROLES, SYSTEMS, Principal, Role, System
from app.db import Connection, Database
from app.errors import FieldError, Unauthorized, ValidationFailed
from app.problems import problem, problem_response

__all__ = ["AuthMiddleware", "create_client", "find_client_by_key", "hash_key"]

_KEY_PREFIX = "psb_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _binding_errors(
    role: str, customers: Sequence[str], contracts: Sequence[uuid.UUID], system: str | None
) -> list[FieldError]:
    errors = []
    if role not in ROLES:
        errors.append(FieldError(["role"], f"must be one of {', '.join(ROLES)}", "INVALID_ROLE"))
    if role == "customer" and len(customers) != 1:
        errors.append(FieldError(["customer"], "a customer key is bound to exactly one customer (--customer)"))
    if role not in ("customer", "project_manager") and customers:
        errors.append(FieldError(["customer"], "only customer and project_manager keys are bound to customers"))
    if role != "project_manager" and contracts:
        errors.append(FieldError(["contract"], "only project_manager keys are bound to contracts"))
    if system is not None and (role != "integration" or system not in SYSTEMS):
        errors.append(FieldError(["system"], f"only integration keys speak for a system, one of {', '.join(SYSTEMS)}"))
    return errors


async def create_client(
    conn: Connection,
    name: str,
    role: str,
    *,
    customers: Sequence[str] = (),
    contracts: Sequence[uuid.UUID] = (),
    system: str | None = None,
) -> tuple[Principal, str]:
    """Create a client and return it with its key: the only time the key is visible.

    A key is bound only to customers and contracts psbridge already knows: a typo would otherwise
    mint a key that silently sees nothing (or, worse, whatever later arrives under that id).
    """
    errors = _binding_errors(role, customers, contracts, system)
    if not errors:
        known_customers = {
            r["external_id"]
            for r in await conn.fetch("select external_id from customer where external_id = any($1)", list(customers))
        }
        known_contracts = {
            r["id"] for r in await conn.fetch("select id from contract where id = any($1)", list(contracts))
        }
        errors += [
            FieldError(["customer"], f"psbridge does not know customer {c!r} yet (register a contract for it first)")
            for c in customers
            if c not in known_customers
        ]
        errors += [
            FieldError(["contract"], f"contract {c} does not exist") for c in contracts if c not in known_contracts
        ]
    if errors:
        raise ValidationFailed("; ".join(e.msg for e in errors), code=errors[0].code or "INVALID_CLIENT", errors=errors)
    key = _KEY_PREFIX + secrets.token_urlsafe(32)
    # The role and system were checked above against ROLES and SYSTEMS.
    principal = Principal(
        uuid.uuid4(),
        name,
        cast(Role, role),
        tuple(dict.fromkeys(customers)),
        tuple(dict.fromkeys(contracts)),
        cast(System | None, system),
    )
    await conn.execute(
        """insert into api_client (id, name, role, customers, contracts, system, key_prefix, key_hash)
           values ($1, $2, $3, $4, $5, $6, $7, $8)""",
        principal.id,
        name,
        role,
        list(principal.customers),
        list(principal.contracts),
        system,
        key[:10],
        hash_key(key),
    )
    return principal, key


async def find_client_by_key(conn: Connection, key: str) -> Principal | None:
    row = await conn.fetchrow(
        """select id, name, role, customers, contracts, system from api_client
           where key_hash = $1 and revoked_at is null""",
        hash_key(key),
    )
    if row is None:
        return None
    return Principal(
        row["id"], row["name"], row["role"], tuple(row["customers"]), tuple(row["contracts"]), row["system"]
    )


class _KeyCache:
    """A few seconds of memory per key: saves a query per request; revocation lags by ``ttl``."""

    def __init__(self, ttl: float = 5.0, size: int = 10_000) -> None:
        self.ttl, self.size = ttl, size
        self._items: dict[str, tuple[float, Principal]] = {}

    def get(self, key_hash: str) -> Principal | None:
        hit = self._items.get(key_hash)
        if hit and hit[0] > time.monotonic():
            return hit[1]
        return None

    def put(self, key_hash: str, client: Principal) -> None:
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
        # An entry ending in "/" is a prefix ("/static/"), except "/" itself: the index page, not everything.
        return any(path == p or (p != "/" and p.endswith("/") and path.startswith(p)) for p in self.public_paths)

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
