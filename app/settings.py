"""Settings: every knob is an environment variable prefixed ``PSBRIDGE_`` (also read from ``.env``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PSBRIDGE_", env_file=".env", extra="ignore")

    env: Literal["dev", "test", "production"] = "dev"
    database_url: str | None = None
    redis_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    sandbox_port: int = 8100

    crm_url: str = "http://127.0.0.1:8100/crm"
    psa_url: str = "http://127.0.0.1:8100/psa"
    erp_url: str = "http://127.0.0.1:8100/erp"
    tax_url: str = "http://127.0.0.1:8100/tax"
    fx_url: str = "http://127.0.0.1:8100/fx"

    erp_rate_limit: str = "50/second"
    erp_max_concurrency: int = 4
    outbound_timeout_seconds: float = 10.0

    # Inbound limits; keyed by API client, never by a spoofable address.
    default_rate_limit: str = "600/minute"
    # /system/v1/erp/... (diagnosis and internal callers) share one budget, so they never crowd the ERP.
    erp_system_rate_limit: str = "10/second"
    max_body_bytes: int = 8 * 1024 * 1024
    max_batch_entries: int = 5000

    db_pool_min: int = 1
    db_pool_max: int = 10
    queue_name: str = "psbridge:queue"
    job_max_tries: int = 8
    # A job gives up only when it has used job_max_tries AND this long has passed since it was queued:
    # a backend failing 30 % of the time never exhausts one, an outage of an hour does.
    job_time_budget_seconds: float = Field(default=3600.0, ge=0)
    # How long an intent (an invoice to quote or post, feedback, a propagation) may sit without
    # progress before the sweeper (every 15 s in each worker) queues its job again.
    sweep_grace_seconds: float = Field(default=30.0, gt=0)
    # Circuit breakers on the ERP and the tax engine, shared by every process through Redis: open when
    # at least circuit_failure_ratio of the last circuit_window calls failed, for circuit_cooldown_seconds.
    circuit_window: int = Field(default=20, ge=2)
    circuit_failure_ratio: float = Field(default=0.8, gt=0, le=1)
    circuit_cooldown_seconds: float = Field(default=30.0, gt=0)
    # The hour (UTC) the workers reconcile every posted invoice with the ERP, once a day.
    reconciliation_hour: int = Field(default=2, ge=0, le=23)
    exception_sla_hours: int = Field(default=24, ge=1)
    # Each worker process serves its own /metrics, so each needs a port of its own: set it per process
    # (two workers on one machine, two ports), or 0 to let the OS pick a free one (the worker logs it).
    # Unset: no metrics server. Bound to loopback unless the host says otherwise.
    worker_metrics_port: int | None = Field(default=None, ge=0, le=65535)
    worker_metrics_host: str = "127.0.0.1"

    graphql_max_depth: int = 10
    graphql_max_aliases: int = 20
    graphql_max_tokens: int = 2000
    graphql_max_page_size: int = 100

    @property
    def required_database_url(self) -> str:
        if not self.database_url:
            raise RuntimeError("PSBRIDGE_DATABASE_URL is not set (psbridge dev resolves one for you)")
        return self.database_url

    @property
    def required_redis_url(self) -> str:
        if not self.redis_url:
            raise RuntimeError("PSBRIDGE_REDIS_URL is not set (psbridge dev resolves one for you)")
        return self.redis_url
