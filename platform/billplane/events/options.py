"""Tunables of outbound webhooks, with production defaults.

The API reads ``allow_http_loopback`` when it checks an endpoint's URL, ``max_endpoints`` when it
creates one and ``max_replay_days`` when it replays; the worker reads the rest. Both come from the
environment (``webhook_options``); tests and embedders hand their own instance in.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from billplane.db import tenant_scan

ALLOW_HTTP_LOOPBACK_VARIABLE = "BILLPLANE_WEBHOOKS_ALLOW_HTTP_LOOPBACK"
# Delays before attempts 2, 3, ...: 9 attempts over about 38 hours (Svix's published schedule with
# one more 10 h step). A receiver that was down for a day still gets every event once it is back.
DEFAULT_SCHEDULE = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0, 36000.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookOptions:
    # Seconds to wait after each failed attempt; len(retry_schedule) + 1 attempts in all.
    retry_schedule: tuple[float, ...] = DEFAULT_SCHEDULE
    # The whole attempt (resolve, connect, send, the answer's headers and the excerpt of its body),
    # not each read alone: a receiver trickling bytes must not hold a worker slot.
    timeout_seconds: float = 10.0
    # A claimed delivery is not attempted again for this long (its worker may have died mid-call).
    # Keep it well above timeout_seconds; an attempt that outlives it anyway is not recorded.
    lease_seconds: float = 60.0
    # http:// to a loopback address (127.0.0.0/8, ::1, localhost), for local development and
    # tests. Everything else must be https to a public address.
    allow_http_loopback: bool = False
    # Endpoints per tenant, disabled ones included (Stripe's limit). Every event fans out to each
    # enabled endpoint in the transaction that writes it, so this bounds what one event costs.
    max_endpoints: int = 16
    # How far back a replay's `since` may reach. A replay queues its events in one statement, and
    # events are never deleted: unbounded, one request could hold a transaction open for hours.
    max_replay_days: int = 30
    # The sweep reads due deliveries of this many tenant schemas per query.
    sweep_batch: int = tenant_scan.BATCH  # its lock budget
    # Due deliveries of one tenant read per query (sweep, listener, and the top-up after each job):
    # the most jobs one tenant has waiting at a time. A larger burst still drains: every finished
    # job reads the page again and queues the next ones.
    due_per_tenant: int = 100
    # Body text of a failed response kept in last_error (receivers sometimes echo secrets back;
    # a short excerpt is enough to debug).
    error_excerpt: int = 200
    user_agent: str = field(default="billplane-webhooks/1")

    @property
    def max_attempts(self) -> int:
        return len(self.retry_schedule) + 1


def options_from_environ(environ: Mapping[str, str]) -> WebhookOptions:
    raw = environ.get(ALLOW_HTTP_LOOPBACK_VARIABLE, "").strip().lower()
    return WebhookOptions(allow_http_loopback=raw in {"1", "true", "yes", "on"})


@lru_cache(maxsize=1)
def webhook_options() -> WebhookOptions:
    """The process's options, from its environment (read once)."""
    return options_from_environ(os.environ)
