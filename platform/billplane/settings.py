"""Settings from the environment, validated once at start with every problem listed."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache, partial
from typing import Literal

import msgspec

from billplane.observability.config import OBSERVABILITY_CONVERTERS
from billplane.secrets.keys import KeyConfigError, parse_keys
from billplane_tenants import normalize_url

MIN_KEY_LENGTH = 32


class SettingsError(ValueError):
    """The environment does not describe a runnable billplane; the message says what to fix."""


class DatabaseSettings(msgspec.Struct, frozen=True, kw_only=True):
    url: str
    # For the connections that LISTEN (and procrastinate's, which does too): a session needs a
    # session, so behind a transaction-mode pooler they go to PostgreSQL or a session-mode pooler.
    listen_url: str | None = None
    # A fixed pool: overflow connections are closed on return, and reopening one costs more than
    # a request (the HTTP benchmark saw 30-160 reconnects a run with 5 + 5 under 32 clients).
    pool_size: int = 10
    max_overflow: int = 0

    @property
    def listening_url(self) -> str:
        """Where the connections that LISTEN go: ``listen_url``, else ``url``."""
        return self.listen_url or self.url


class ServerSettings(msgspec.Struct, frozen=True, kw_only=True):
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1


class SecuritySettings(msgspec.Struct, frozen=True, kw_only=True):
    secret_key: str
    # None outside the API server (migrations, CLI): then no request can pass as the operator.
    admin_key: str | None = None
    # How long a resolved API key is trusted before the control schema is asked again: the bound
    # on how late another process sees a revocation or suspension.
    auth_cache_seconds: float = 5.0
    # "kid:base64key,..." (first = current) for secrets stored encrypted; None: one key derived
    # from secret_key. Parsed into a key ring by billplane.secrets.keys.key_ring.
    encryption_keys: str | None = None

    def __repr__(self) -> str:  # never print secrets, even in a traceback or a debugger
        return "SecuritySettings(admin_key=***, secret_key=***, encryption_keys=***)"


@dataclass(frozen=True, slots=True)
class PendingChecks:
    """When billplane asks a provider about a charge it holds as pending (``every``), and when it
    shows the tenant one that nothing settled, whatever the provider answered or whether it can be
    asked at all (``flag_after``, counted from the payment's creation)."""

    every: timedelta = timedelta(hours=1)
    flag_after: timedelta = timedelta(days=5)


class ProviderSettings(msgspec.Struct, frozen=True, kw_only=True):
    # Provider names this process may load; None: every installed provider distribution.
    allowlist: frozenset[str] | None = None
    # A subscription still incomplete (waiting for the customer's approval) this long after it
    # was created becomes incomplete_expired and is canceled at its provider; 23 h as at Stripe.
    incomplete_expiry_hours: float = 23.0
    # A payment whose charge gave up (provider unreachable) is reconciled this long after its last
    # attempt ended: a request still in flight, or the provider's own lag, has landed by then.
    payment_reconcile_after_minutes: float = 10.0
    # A payment its provider holds as pending (a bank debit) whose webhook has not settled it is
    # asked about this long after it was created, then at most this often (payment_status).
    payment_pending_check_minutes: float = 60.0
    # ... and, if nothing settled it (no webhook, no settled answer, or a provider that cannot be
    # asked), shown to the tenant (action_required) this long after it was created: several
    # business days, as a bank debit may take.
    payment_pending_flag_hours: float = 120.0

    @property
    def payment_reconcile_after(self) -> timedelta:
        return timedelta(minutes=self.payment_reconcile_after_minutes)

    @property
    def payment_pending_checks(self) -> PendingChecks:
        return PendingChecks(
            every=timedelta(minutes=self.payment_pending_check_minutes),
            flag_after=timedelta(hours=self.payment_pending_flag_hours),
        )


class ObservabilitySettings(msgspec.Struct, frozen=True, kw_only=True):
    # None: the command decides (json for `run` and `worker`, text for `dev`).
    log_format: Literal["json", "text"] | None = None
    log_level: str = "INFO"
    metrics_enabled: bool = True
    # When set, /metrics asks for `Authorization: Bearer <token>`; None: open on the API port.
    metrics_token: str | None = None
    # Tenants given their own label in billplane_tenant_requests_total, per process; the rest: _other.
    metrics_tenant_labels: int = 100
    # Shared by the server processes of `billplane run` (multiprocess metrics); None: a fresh
    # temporary directory when --workers > 1.
    metrics_dir: str | None = None
    # `billplane worker` serves its own metrics on this port; None: it serves none.
    worker_metrics_port: int | None = None
    tracing: bool = False

    def __repr__(self) -> str:  # the token is a secret
        return (
            f"ObservabilitySettings(log_format={self.log_format!r}, log_level={self.log_level!r}, "
            f"metrics_enabled={self.metrics_enabled}, metrics_token=***, tracing={self.tracing})"
        )


class RateLimitSettings(msgspec.Struct, frozen=True, kw_only=True):
    # Each tenant's default request rate in each API process (0: unlimited), with room for a
    # burst; the operator overrides both per tenant. docs/operations/limits.md says why per process.
    per_second: int = 100
    burst: int = 200


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    database: DatabaseSettings
    server: ServerSettings = msgspec.field(default_factory=ServerSettings)
    security: SecuritySettings
    providers: ProviderSettings = msgspec.field(default_factory=ProviderSettings)
    observability: ObservabilitySettings = msgspec.field(default_factory=ObservabilitySettings)
    rate_limit: RateLimitSettings = msgspec.field(default_factory=RateLimitSettings)


# Environment variable -> (group, field). The configuration reference in docs/ lists the same.
ENVIRONMENT: dict[str, tuple[str, str]] = {
    "BILLPLANE_DATABASE_URL": ("database", "url"),
    "BILLPLANE_DATABASE_LISTEN_URL": ("database", "listen_url"),
    "BILLPLANE_DB_POOL_SIZE": ("database", "pool_size"),
    "BILLPLANE_DB_MAX_OVERFLOW": ("database", "max_overflow"),
    "BILLPLANE_HOST": ("server", "host"),
    "BILLPLANE_PORT": ("server", "port"),
    "BILLPLANE_WORKERS": ("server", "workers"),
    "BILLPLANE_ADMIN_KEY": ("security", "admin_key"),
    "BILLPLANE_SECRET_KEY": ("security", "secret_key"),
    "BILLPLANE_AUTH_CACHE_SECONDS": ("security", "auth_cache_seconds"),
    "BILLPLANE_ENCRYPTION_KEYS": ("security", "encryption_keys"),
    "BILLPLANE_PROVIDERS": ("providers", "allowlist"),
    "BILLPLANE_INCOMPLETE_EXPIRY_HOURS": ("providers", "incomplete_expiry_hours"),
    "BILLPLANE_PAYMENT_RECONCILE_AFTER_MINUTES": ("providers", "payment_reconcile_after_minutes"),
    "BILLPLANE_PAYMENT_PENDING_CHECK_MINUTES": ("providers", "payment_pending_check_minutes"),
    "BILLPLANE_PAYMENT_PENDING_FLAG_HOURS": ("providers", "payment_pending_flag_hours"),
    "BILLPLANE_LOG_FORMAT": ("observability", "log_format"),
    "BILLPLANE_LOG_LEVEL": ("observability", "log_level"),
    "BILLPLANE_METRICS_ENABLED": ("observability", "metrics_enabled"),
    "BILLPLANE_METRICS_TOKEN": ("observability", "metrics_token"),
    "BILLPLANE_METRICS_TENANT_LABELS": ("observability", "metrics_tenant_labels"),
    "BILLPLANE_METRICS_DIR": ("observability", "metrics_dir"),
    "BILLPLANE_WORKER_METRICS_PORT": ("observability", "worker_metrics_port"),
    "BILLPLANE_TRACING": ("observability", "tracing"),
    "BILLPLANE_RATE_LIMIT_PER_SECOND": ("rate_limit", "per_second"),
    "BILLPLANE_RATE_LIMIT_BURST": ("rate_limit", "burst"),
}
_INTEGERS = {"pool_size", "max_overflow", "port", "workers", "per_second", "burst"}
_REQUIRED = ("BILLPLANE_DATABASE_URL", "BILLPLANE_SECRET_KEY")
_REQUIRED_TO_SERVE = ("BILLPLANE_ADMIN_KEY",)


def load_settings(environ: Mapping[str, str] | None = None, *, serving: bool = True) -> Settings:
    """Settings from ``environ`` (default: the process environment).

    ``serving=False`` is for commands that never answer requests (migrations, tenant admin from
    the shell): they do not need the operator's admin key.
    """
    env = os.environ if environ is None else environ
    required = _REQUIRED + (_REQUIRED_TO_SERVE if serving else ())
    problems = [f"{name} is not set" for name in required if not env.get(name)]
    groups: dict[str, dict[str, object]] = {
        "database": {},
        "server": {},
        "security": {},
        "providers": {},
        "observability": {},
        "rate_limit": {},
    }
    for name, (group, field) in ENVIRONMENT.items():
        raw = env.get(name)
        if not raw:
            continue
        try:
            convert = OBSERVABILITY_CONVERTERS[field] if group == "observability" else partial(_convert, field)
            groups[group][field] = convert(raw)
        except ValueError as exc:
            problems.append(f"{name}: {exc}")
    problems += _check(groups)
    if problems:
        raise SettingsError("invalid configuration:\n  - " + "\n  - ".join(problems))
    return msgspec.convert(groups, Settings)


def _convert(field: str, raw: str) -> object:
    if field in {"url", "listen_url"}:
        return normalize_url(raw)
    if field in _INTEGERS:
        return int(raw)
    if field == "auth_cache_seconds":
        return float(raw)
    if field in _DURATIONS:
        return _duration(field, raw)
    if field == "allowlist":  # comma-separated provider names
        return sorted({name.strip() for name in raw.split(",") if name.strip()})
    return raw


# Field -> (smallest value allowed, what the error names). NaN is refused too (it compares false).
_DURATIONS = {
    "incomplete_expiry_hours": (0.0, "must be a positive number of hours"),
    # Sooner than a minute, a charge request still in flight could land after the lookup.
    "payment_reconcile_after_minutes": (1.0, "must be a number of minutes, at least 1"),
    # More often than a minute would only load the provider's API.
    "payment_pending_check_minutes": (1.0, "must be a number of minutes, at least 1"),
    "payment_pending_flag_hours": (0.0, "must be a positive number of hours"),
}


def _duration(field: str, raw: str) -> float:
    value = float(raw)
    smallest, problem = _DURATIONS[field]
    if not (value > smallest if smallest == 0 else value >= smallest):
        raise ValueError(problem)
    return value


def _check(groups: dict[str, dict[str, object]]) -> list[str]:
    problems = []
    for field in ("admin_key", "secret_key"):
        value = groups["security"].get(field)
        if isinstance(value, str) and len(value) < MIN_KEY_LENGTH:
            problems.append(f"BILLPLANE_{field.upper()} must be at least {MIN_KEY_LENGTH} characters")
    encryption_keys = groups["security"].get("encryption_keys")
    if isinstance(encryption_keys, str):
        try:
            parse_keys(encryption_keys)
        except KeyConfigError as exc:  # its messages name entries and key ids, never key material
            problems += [f"BILLPLANE_ENCRYPTION_KEYS: {problem}" for problem in exc.problems]
    port = groups["server"].get("port")
    if isinstance(port, int) and not 0 < port < 65536:  # noqa: PLR2004 - the TCP port range
        problems.append("BILLPLANE_PORT must be between 1 and 65535")
    for field in ("pool_size", "workers"):
        value = groups["database"].get(field, groups["server"].get(field))
        if isinstance(value, int) and value < 1:
            problems.append(f"{field} must be at least 1")
    problems += _check_rate_limit(groups["rate_limit"])
    return problems


def _check_rate_limit(group: dict[str, object]) -> list[str]:
    per_second, burst = group.get("per_second"), group.get("burst")
    problems = []
    if isinstance(per_second, int) and per_second < 0:
        problems.append("BILLPLANE_RATE_LIMIT_PER_SECOND must be 0 (unlimited) or more")
    if isinstance(burst, int) and burst < 1:
        problems.append("BILLPLANE_RATE_LIMIT_BURST must be at least 1")
    return problems


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
