"""A tenant's Stripe credentials: one secret (or restricted) API key, checked against the account mode."""

from __future__ import annotations

import msgspec

from billplane.plugins import Mode

_PREFIXES: dict[Mode, tuple[str, ...]] = {
    "test": ("sk_test_", "rk_test_"),
    "live": ("sk_live_", "rk_live_"),
}


class StripeCredentials(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    secret_key: str

    def __repr__(self) -> str:  # the key never reaches a log or a traceback
        return "StripeCredentials(secret_key=***)"


def key_problem(secret_key: str, mode: Mode) -> str | None:
    """Why this key cannot be used for an account in ``mode``, or None. Never repeats the key."""
    prefixes = _PREFIXES[mode]
    if not any(secret_key.startswith(prefix) and len(secret_key) > len(prefix) for prefix in prefixes):
        wanted = " or ".join(repr(prefix) for prefix in prefixes)
        return f"a Stripe key for a {mode}-mode account starts with {wanted}"
    return None
