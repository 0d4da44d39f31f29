"""The configuration reference: every environment variable billplane reads, with its meaning.

Variables of `billplane.settings.ENVIRONMENT` take their default from the settings structs, so the
page cannot state a default the code does not have. The descriptions live here, beside the list
they document; tests/docs/test_configuration.py fails when a variable the code reads has none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import msgspec

from billplane.settings import ENVIRONMENT, Settings

Section = Literal["service", "providers", "deployment", "development", "tests"]
SECTIONS: dict[Section, str] = {
    "service": "Service (API, worker and CLI)",
    "providers": "Provider plugins",
    "deployment": "Deployment files (read by `deploy/compose.yaml`, not by billplane)",
    "development": "Development",
    "tests": "Tests",
}


@dataclass(frozen=True, slots=True)
class Variable:
    name: str
    description: str
    section: Section = "service"
    # Shown as the default; None: taken from the settings struct (ENVIRONMENT variables only).
    default: str | None = None


VARIABLES: tuple[Variable, ...] = (
    Variable(
        "BILLPLANE_DATABASE_URL",
        "PostgreSQL URL. `postgres://`, `postgresql://` and `postgresql+asyncpg://` are accepted; the asyncpg "
        "driver is always used.",
        default="required (`make run`: the embedded server)",
    ),
    Variable(
        "BILLPLANE_DATABASE_LISTEN_URL",
        "Where the connections that `LISTEN` go (API-key changes in API processes, outbox and delivery "
        "announcements and procrastinate's job queue in workers): PostgreSQL itself or a session-mode pooler, "
        "when `BILLPLANE_DATABASE_URL` is a transaction-mode pooler, through which `LISTEN` hears nothing. "
        "See [scaling](scaling.md).",
        default="that of `BILLPLANE_DATABASE_URL`",
    ),
    Variable(
        "BILLPLANE_SECRET_KEY",
        "At least 32 characters. API-key digests are keyed with a pepper derived from it: changing it "
        "invalidates every tenant API key and every stored `Idempotency-Key` response, and makes provider "
        "credentials encrypted under the key derived from it (`s0`, the default of `BILLPLANE_ENCRYPTION_KEYS`) "
        "unreadable: configure explicit keys and rotate first (see [secret rotation](secret-rotation.md)).",
        default="required",
    ),
    Variable(
        "BILLPLANE_ADMIN_KEY",
        "At least 32 characters. The operator's bearer key for `/v1/admin`. Not needed by the CLI's migration "
        "and tenant commands.",
        default="required to serve",
    ),
    Variable("BILLPLANE_HOST", "Interface `billplane run` binds."),
    Variable("BILLPLANE_PORT", "Port `billplane run` binds (1-65535)."),
    Variable("BILLPLANE_WORKERS", "Server processes for `billplane run`, each with its own pool."),
    Variable(
        "BILLPLANE_DB_POOL_SIZE",
        "Connections kept per process; requests beyond it wait for one. Keep it small: a backend that touches "
        "many tenant schemas grows by ~4 KB per relation it has seen; connections are recycled every 30 "
        "minutes. See [scaling](scaling.md).",
    ),
    Variable(
        "BILLPLANE_DB_MAX_OVERFLOW",
        "Extra connections per process under load, closed again on return. Reopening a connection costs more "
        "than a request, so the default is a fixed pool.",
    ),
    Variable(
        "BILLPLANE_ENCRYPTION_KEYS",
        "Keys that encrypt tenants' provider credentials and webhook endpoint signing secrets at rest: "
        "`kid:base64key,...`, each key 32 bytes of base64, the first one current (it encrypts), the others only "
        "decrypt until `billplane secrets rotate` has moved everything to the current key. `billplane secrets "
        "generate-key KID` prints a new entry. See [secret rotation](secret-rotation.md).",
        default="one key derived from `BILLPLANE_SECRET_KEY` (key id `s0`)",
    ),
    Variable(
        "BILLPLANE_AUTH_CACHE_SECONDS",
        "How long a process trusts a resolved API key while it cannot hear key changes. Revocations, "
        "suspensions, resumes and deletions are announced to every process when they commit (PostgreSQL "
        "`NOTIFY` on `billplane_key_changes`), and each process forgets that tenant's keys at once; while "
        "listening, a resolved key is trusted for 5 minutes. If the listening connection is lost, the process "
        "empties its cache and falls back to this bound until it reconnects.",
    ),
    Variable(
        "BILLPLANE_PROVIDERS",
        "Comma-separated provider names this process may load (an allowlist of `billplane.providers` entry points).",
        default="every installed provider",
    ),
    Variable(
        "BILLPLANE_INCOMPLETE_EXPIRY_HOURS",
        "How long a subscription may stay `incomplete` (waiting for the customer's approval at PayPal) before "
        "the worker marks it `incomplete_expired` and cancels it at the provider.",
    ),
    Variable(
        "BILLPLANE_PAYMENT_PENDING_CHECK_MINUTES",
        "How long after a payment (or refund) was created the worker asks its provider how a charge (or "
        "refund) it holds as pending (a bank debit) stands, when no webhook has settled it, and then how "
        "often at most; at least 1. Only providers with the `payment_status` (`refund_status`) capability "
        "are asked. See "
        "[charges pending at the provider](../concepts/payment-reconciliation.md#charges-pending-at-the-provider) "
        "and [refunds nothing settled](../concepts/payment-reconciliation.md#refunds-nothing-settled).",
    ),
    Variable(
        "BILLPLANE_PAYMENT_PENDING_FLAG_HOURS",
        "How long after a payment (or refund) was created a charge (or refund) its provider still holds as "
        "pending, with no settled answer from its webhook or from asking (or at a provider that cannot be "
        "asked), is shown to the tenant (`action_required`), to settle it with "
        "`POST /v1/payments/{id}/resolve` (`POST /v1/refunds/{id}/resolve`). See "
        "[charges pending at the provider](../concepts/payment-reconciliation.md#charges-pending-at-the-provider) "
        "and [refunds nothing settled](../concepts/payment-reconciliation.md#refunds-nothing-settled).",
    ),
    Variable(
        "BILLPLANE_PAYMENT_RECONCILE_AFTER_MINUTES",
        "How long after a charge (or refund) gave up (every attempt failed to reach the provider) the worker "
        "asks the provider whether the charge (refund) exists, and `POST /v1/payments/{id}/sync` "
        "(`POST /v1/refunds/{id}/sync`) may; at least 1. Sooner, a request still in flight could land after "
        "the provider said it has no such charge. Only providers with the `payment_lookup` (`refund_lookup`) "
        "capability are asked; at any other, the payment or refund is shown to the tenant after as long. See "
        "[payment reconciliation](../concepts/payment-reconciliation.md).",
    ),
    Variable(
        "BILLPLANE_PUBLISH",
        "Where `deploy/compose.yaml` publishes the API's port 8000 on the host (`address:port`). See "
        "[deployment](deployment.md).",
        section="deployment",
        default="`127.0.0.1:8000`",
    ),
    Variable(
        "BILLPLANE_RATE_LIMIT_PER_SECOND",
        "Each tenant's default request rate in each API process; `0`: no limit. The operator overrides it per "
        "tenant. See [limits](limits.md).",
    ),
    Variable(
        "BILLPLANE_RATE_LIMIT_BURST",
        "Each tenant's default burst: how many requests it may send at once after a quiet spell. See "
        "[limits](limits.md).",
    ),
    Variable(
        "BILLPLANE_LOG_FORMAT",
        "`json`: one JSON object per line (timestamp, level, logger, message, request id, tenant, route...); "
        "`text`: readable lines. See [observability](observability.md).",
        default="`json` for `run` and `worker`, `text` for `dev`",
    ),
    Variable(
        "BILLPLANE_LOG_LEVEL",
        "`DEBUG`, `INFO`, `WARNING`, `ERROR` or `CRITICAL`. One access line per request is logged at `INFO` "
        "(`/health` and `/metrics` at `DEBUG`).",
    ),
    Variable("BILLPLANE_METRICS_ENABLED", "`false`: no `/metrics` route (404)."),
    Variable(
        "BILLPLANE_METRICS_TOKEN",
        "At least 32 characters. `/metrics` answers only `Authorization: Bearer <token>` (Prometheus' "
        "`authorization` scrape setting); the token opens nothing else.",
        default="unset: `/metrics` answers the admin key only",
    ),
    Variable(
        "BILLPLANE_METRICS_TENANT_LABELS",
        "How many tenants get their own `tenant` label in `billplane_tenant_requests_total`, per process (the "
        "first seen); the others count as `_other`. `0`: every tenant is `_other`.",
    ),
    Variable(
        "BILLPLANE_METRICS_DIR",
        "Where the server processes of `billplane run` share their metrics (prometheus_client's multiprocess "
        "mode). Emptied at each start. `billplane worker` never writes there.",
        default="a fresh temporary directory when `--workers` > 1",
    ),
    Variable(
        "BILLPLANE_WORKER_METRICS_PORT",
        "`billplane worker` serves its own `/metrics` on this port (also `--metrics-port`), bound to `BILLPLANE_HOST`.",
        default="unset: none",
    ),
    Variable(
        "BILLPLANE_TRACING",
        "`true`: an OpenTelemetry span per request when the `opentelemetry` package is installed (never "
        "required); a warning says so when it is not.",
    ),
    Variable(
        "BILLPLANE_WEBHOOKS_ALLOW_HTTP_LOOPBACK",
        "Development and tests only: let outbound webhook endpoints use loopback addresses "
        "(`http://127.0.0.1:...`, `http://localhost:...`). Otherwise endpoints must be `https://` to a public "
        "address.",
        default="`false`",
    ),
    Variable(
        "BILLPLANE_PROVIDER_<NAME>_<KEY>",
        "Operator options for one provider plugin, handed to its adapters as `options[key]` (lower-cased), "
        "for example an API base URL. The built-in ones follow.",
        section="providers",
        default="unset",
    ),
    Variable(
        "BILLPLANE_PROVIDER_SANDBOX_WEBHOOK_URL",
        "Where the built-in sandbox provider POSTs the signed outcome of pending payments: billplane's base URL "
        "or a full URL with `{account_id}`. Unset: no sandbox webhook is sent.",
        section="providers",
        default="unset (`make run`: its own URL)",
    ),
    Variable(
        "BILLPLANE_PROVIDER_SANDBOX_PENDING_DELAY_SECONDS",
        "How long a sandbox payment stays pending before its outcome is sent (0 or more).",
        section="providers",
        default="`2`",
    ),
    Variable(
        "BILLPLANE_PROVIDER_STRIPE_API_BASE",
        "Stripe's API base URL, for a local fake of Stripe's API.",
        section="providers",
        default="Stripe's API",
    ),
    Variable(
        "BILLPLANE_PROVIDER_STRIPE_TIMEOUT",
        "Seconds a Stripe call may take; a slower call fails and the sync engine retries it later.",
        section="providers",
        default="`30`",
    ),
    Variable(
        "BILLPLANE_PROVIDER_PAYPAL_API_BASE",
        "PayPal's API base URL for both modes, for a local fake; unset, `test` accounts use PayPal's sandbox "
        "and `live` accounts its live API.",
        section="providers",
        default="by account mode",
    ),
    Variable(
        "BILLPLANE_PROVIDER_PAYPAL_TIMEOUT",
        "Seconds a PayPal call may take (a non-positive or malformed value means the default).",
        section="providers",
        default="`10`",
    ),
    Variable(
        "BILLPLANE_PROVIDER_PAYPAL_RETURN_URL",
        "Where PayPal sends a customer who approved a subscription (PayPal requires one).",
        section="providers",
        default="a placeholder on example.com",
    ),
    Variable(
        "BILLPLANE_PROVIDER_PAYPAL_CANCEL_URL",
        "Where PayPal sends a customer who declined a subscription.",
        section="providers",
        default="a placeholder on example.com",
    ),
    Variable(
        "BILLPLANE_HOME",
        "Where `billplane dev` (`make run`) keeps the embedded database and the generated keys.",
        section="development",
        default="`./.billplane`",
    ),
    Variable(
        "BILLPLANE_TEST_DATABASE_URL",
        "A server on which the suite may create and drop databases. Unset: 127.0.0.1:5432 if it answers, else "
        "the suite starts an embedded server.",
        section="tests",
        default="unset",
    ),
    Variable(
        "BILLPLANE_FAULT",
        "Crash tests only: the process kills itself (SIGKILL) when it reaches the named point of the sync "
        "protocol. Never set it in production.",
        section="tests",
        default="unset",
    ),
)


def pattern(name: str) -> re.Pattern[str]:
    """The names a documented variable stands for: `<NAME>`-style placeholders match any name part."""
    parts = re.split(r"<[A-Z]+>", name)
    return re.compile("[A-Z0-9_]+".join(re.escape(part) for part in parts))


def documentation(name: str) -> Variable | None:
    """The entry that documents ``name``: its own, else a pattern's (`BILLPLANE_PROVIDER_<NAME>_<KEY>`)."""
    exact = [variable for variable in VARIABLES if variable.name == name]
    if exact:
        return exact[0]
    patterns = [variable for variable in VARIABLES if "<" in variable.name and pattern(variable.name).fullmatch(name)]
    return patterns[0] if patterns else None


def settings_default(name: str) -> str:
    """The default the settings structs give the variable ``name`` of ENVIRONMENT, as Markdown."""
    group, field = ENVIRONMENT[name]
    group_type = _field(Settings, group).type
    default = _field(group_type, field).default
    if default is msgspec.NODEFAULT:
        return "required"
    if default is None:
        return "unset"
    return f"`{default}`"


def _field(struct: object, name: str) -> msgspec.structs.FieldInfo:
    if not (isinstance(struct, type) and issubclass(struct, msgspec.Struct)):
        raise TypeError(f"{struct!r} is not a settings struct")
    for candidate in msgspec.structs.fields(struct):
        if candidate.name == name:
            return candidate
    raise KeyError(f"{struct.__name__} has no field {name!r}")


def render() -> str:
    """The reference tables, one per section, as Markdown."""
    out: list[str] = []
    for section, title in SECTIONS.items():
        out += [f"## {title}", "", "| variable | default | meaning |", "| --- | --- | --- |"]
        for variable in VARIABLES:
            if variable.section != section:
                continue
            default = variable.default if variable.default is not None else settings_default(variable.name)
            out.append(f"| `{variable.name}` | {default} | {' '.join(variable.description.split())} |")
        out.append("")
    return "\n".join(out)
