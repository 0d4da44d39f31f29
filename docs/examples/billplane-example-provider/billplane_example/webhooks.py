"""Example Pay's webhook signature: ``example-signature: t=<unix seconds>,v1=<hex HMAC-SHA256>``.

The HMAC covers ``"<t>.<raw body>"`` and is keyed with the account's webhook secret.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

from billplane.plugins import WebhookVerificationError

HEADER = "example-signature"
TOLERANCE_SECONDS = 300


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    """The headers Example Pay sends with ``body``: for tests."""
    return {HEADER: f"t={timestamp},v1={_mac(secret, timestamp, body)}"}


def verify(secret: str | None, headers: Mapping[str, str], body: bytes) -> None:
    if not secret:
        raise WebhookVerificationError("the account has no webhook secret")
    parts = dict(part.split("=", 1) for part in headers.get(HEADER, "").split(",") if "=" in part)
    if not parts.get("t", "").isdigit() or "v1" not in parts:
        raise WebhookVerificationError(f"missing or malformed {HEADER} header")
    timestamp = int(parts["t"])
    if abs(time.time() - timestamp) > TOLERANCE_SECONDS:
        raise WebhookVerificationError("the webhook timestamp is more than 5 minutes off")
    if not hmac.compare_digest(parts["v1"], _mac(secret, timestamp, body)):
        raise WebhookVerificationError("the webhook signature does not match")
