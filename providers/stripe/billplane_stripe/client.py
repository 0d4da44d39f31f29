"""One ``stripe.StripeClient`` per tenant account: never the module-global ``stripe.api_key``."""

from __future__ import annotations

from collections.abc import Mapping

import stripe

DEFAULT_TIMEOUT = 30.0


def timeout_option(options: Mapping[str, str]) -> float:
    """``BILLPLANE_PROVIDER_STRIPE_TIMEOUT`` in seconds; a call that takes longer is retried by the sync engine."""
    raw = options.get("timeout")
    if raw is None:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"BILLPLANE_PROVIDER_STRIPE_TIMEOUT must be a number of seconds, not {raw!r}") from None
    if value <= 0:
        raise ValueError("BILLPLANE_PROVIDER_STRIPE_TIMEOUT must be positive")
    return value


def build_client(secret_key: str, options: Mapping[str, str]) -> stripe.StripeClient:
    """A client for one account. ``api_base`` points it at another server (a local fake in tests)."""
    api_base = options.get("api_base")
    return stripe.StripeClient(
        secret_key,
        base_addresses={"api": api_base} if api_base else None,
        # billplane's sync engine retries with backoff and the same idempotency key; retrying here
        # as well would hold an outbox worker for seconds and hide the failure from its record.
        max_network_retries=0,
        http_client=stripe.HTTPXClient(timeout=timeout_option(options)),
    )
