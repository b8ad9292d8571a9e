"""Configuration: one settings object, read from the environment or `.env`."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_home() -> Path:
    return Path(platformdirs.user_data_dir("tubetrace"))


_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)[bB]?\s*")
_MIB = {"": 2**-20, "k": 2**-10, "m": 1, "g": 2**10, "t": 2**20}


def mebibytes(size: str) -> float | None:
    """A memory size as the JVM and Neo4j write them ("2g", "512m", "1024k", "2G"), in MiB;
    None when it is not one."""
    m = _SIZE.fullmatch(size)
    return None if m is None else float(m.group(1)) * _MIB[m.group(2).lower()]


class Settings(BaseSettings):
    """Typed configuration. Without `NEO4J_URI` the managed local server is used."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    neo4j_uri: str | None = Field(default=None, alias="NEO4J_URI")
    neo4j_user: str = Field(default="neo4j", alias="NEO4J_USER")
    neo4j_password: SecretStr | None = Field(default=None, alias="NEO4J_PASSWORD")
    neo4j_database: str = Field(default="neo4j", alias="NEO4J_DATABASE")

    home: Path = Field(default_factory=_default_home, alias="TUBETRACE_HOME")
    timezone: str = Field(default="Asia/Shanghai", alias="TUBETRACE_TIMEZONE")
    heap_size: str = Field(default="2g", alias="TUBETRACE_NEO4J_HEAP")
    pagecache_size: str = Field(default="2g", alias="TUBETRACE_NEO4J_PAGECACHE")
    # The most one transaction may hold on the server's heap (db.memory.transaction.max); unset:
    # half the heap. A question past it (an exposure of a whole city) is refused, not the heap
    # filled for everyone (docs/operations.md).
    tx_memory: str | None = Field(default=None, alias="TUBETRACE_NEO4J_TX_MEMORY")
    start_timeout_s: float = Field(default=180.0, alias="TUBETRACE_NEO4J_START_TIMEOUT")
    batch_size: int = Field(default=5000, alias="TUBETRACE_BATCH_SIZE")
    rate_per_second: float = Field(default=50.0, alias="TUBETRACE_RATE_PER_SECOND")
    rate_burst: int = Field(default=200, alias="TUBETRACE_RATE_BURST")
    key_cache_ttl_s: float = Field(default=1.0, ge=0, le=60, alias="TUBETRACE_KEY_CACHE_TTL")
    # Operations (docs/operations.md): the request log's form; console sessions end after
    # `idle` seconds without a request and, whatever happens, `max` seconds after the login;
    # what the database costs a /metrics scrape is kept for `metrics_cache` seconds.
    log_format: Literal["json", "text"] = Field(default="json", alias="TUBETRACE_LOG_FORMAT")
    console_idle_s: float = Field(default=1800.0, gt=0, alias="TUBETRACE_CONSOLE_IDLE")
    console_max_s: float = Field(default=43200.0, gt=0, alias="TUBETRACE_CONSOLE_MAX")
    metrics_cache_s: float = Field(default=15.0, ge=0, alias="TUBETRACE_METRICS_CACHE")
    # Off (default): each audit journal line is written to the OS before the answer, which
    # survives kill -9 of the API at no measurable cost. On: fsynced too (group commit), which
    # also survives a machine crash, at ~2-3 ms per read on this machine's disk.
    audit_fsync: bool = Field(default=False, alias="TUBETRACE_AUDIT_FSYNC")
    audit_retention_days: int = Field(default=200, ge=183, alias="TUBETRACE_AUDIT_RETENTION_DAYS")
    # Sampling days kept (docs/retention.md): `tubetrace retention purge` keeps this many by
    # default; set (to N > 0) it also runs the purge once a day inside `tubetrace serve`; 0 or
    # unset leaves the serve job off.
    retention_days: int = Field(default=28, ge=0, alias="TUBETRACE_RETENTION_DAYS")
    # Webhooks: an attempt has `timeout` seconds in all (connect, send, answer); failed attempts
    # are retried after base, 2 base, 4 base ... seconds (at most `backoff_max`) until `give_up`
    # seconds passed. Each subscription has at most `per_subscription` attempts in flight (of
    # `concurrency` in all); `breaker_failures` failed attempts in a row park its endpoint for
    # `park` seconds, doubled at each park (at most `backoff_max`), then one attempt probes it.
    webhooks_enabled: bool = Field(default=True, alias="TUBETRACE_WEBHOOKS")
    webhook_timeout_s: float = Field(default=10.0, gt=0, alias="TUBETRACE_WEBHOOK_TIMEOUT")
    webhook_backoff_base_s: float = Field(default=10.0, gt=0, alias="TUBETRACE_WEBHOOK_BACKOFF")
    webhook_backoff_max_s: float = Field(
        default=3600.0, gt=0, alias="TUBETRACE_WEBHOOK_BACKOFF_MAX"
    )
    webhook_give_up_s: float = Field(default=86400.0, gt=0, alias="TUBETRACE_WEBHOOK_GIVE_UP")
    webhook_concurrency: int = Field(
        default=256, ge=1, le=4096, alias="TUBETRACE_WEBHOOK_CONCURRENCY"
    )
    webhook_per_subscription: int = Field(
        default=2, ge=1, le=64, alias="TUBETRACE_WEBHOOK_PER_SUBSCRIPTION"
    )
    webhook_breaker_failures: int = Field(
        default=5, ge=1, alias="TUBETRACE_WEBHOOK_BREAKER_FAILURES"
    )
    webhook_park_s: float = Field(default=60.0, gt=0, alias="TUBETRACE_WEBHOOK_PARK")
    # Off (default): a webhook URL that resolves to a loopback, link-local or private address
    # is refused (when added, and before each attempt). On: a district system on the same
    # private network (and the tests' receivers on 127.0.0.1).
    webhook_allow_private: bool = Field(default=False, alias="TUBETRACE_WEBHOOK_ALLOW_PRIVATE")
    # The health-code feed's `name`: null unless asked for (the code is keyed by the ID number).
    status_feed_names: bool = Field(default=False, alias="TUBETRACE_STATUS_FEED_NAMES")
    webhook_poll_s: float = Field(default=0.5, gt=0, alias="TUBETRACE_WEBHOOK_POLL")

    @field_validator("tx_memory")
    @classmethod
    def _a_transaction_limit(cls, value: str | None) -> str | None:
        """0 (no limit but the server's pool) or at least 1 MiB, which Neo4j requires: a
        value it refuses would stop the server from starting."""
        if value is None or value.strip() == "0":
            return value
        mib = mebibytes(value)
        if mib is None or mib < 1:
            raise ValueError(
                "TUBETRACE_NEO4J_TX_MEMORY is 0 (no limit) or a size of at least 1m, as 512m "
                f"or 4g, not '{value}'"
            )
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
