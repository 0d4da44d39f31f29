"""A tenant's PayPal REST app, as billplane stores it (encrypted) and hands it to the adapter."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

SANDBOX_API = "https://api-m.sandbox.paypal.com"
LIVE_API = "https://api-m.paypal.com"


class PayPalCredentials(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``webhook_id`` is the id PayPal gave the webhook pointing at billplane: PayPal signs each
    delivery for that id, so ``verify-webhook-signature`` needs it."""

    client_id: str
    client_secret: str
    webhook_id: str

    def __repr__(self) -> str:  # a traceback must never print the secret
        return f"PayPalCredentials(client_id={self.client_id!r}, webhook_id={self.webhook_id!r}, client_secret=...)"


SECRET_FIELDS = frozenset({"client_secret"})


def api_base(mode: str, options: Mapping[str, str]) -> str:
    """PayPal's sandbox for test accounts, its live API for live ones; the operator option
    ``BILLPLANE_PROVIDER_PAYPAL_API_BASE`` overrides both (for a local fake)."""
    return options.get("api_base") or (LIVE_API if mode == "live" else SANDBOX_API)
