"""Standard Webhooks signatures (https://www.standardwebhooks.com), as the sandbox sends and checks them.

Headers: ``webhook-id`` (the message id, the same on every delivery attempt), ``webhook-timestamp``
(Unix seconds) and ``webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``,
keyed with the account's webhook secret (its UTF-8 bytes). Several space-separated signatures are
accepted, so a secret can be rotated without dropping events.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from billplane.plugins import WebhookVerificationError

TOLERANCE = timedelta(minutes=5)


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def sign_headers(secret: str, msg_id: str, body: bytes, *, timestamp: datetime | None = None) -> dict[str, str]:
    seconds = int((timestamp or datetime.now(UTC)).timestamp())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(seconds),
        "webhook-signature": signature(secret, msg_id, seconds, body),
    }


def verify(secret: str | None, headers: Mapping[str, str], body: bytes, *, now: datetime | None = None) -> str:
    """The verified message id; ``WebhookVerificationError`` when anything does not check out."""
    if not secret:
        raise WebhookVerificationError("the account has no webhook secret: nothing can be verified")
    lower = {name.lower(): value for name, value in headers.items()}
    msg_id, raw_timestamp, signatures = (
        lower.get(name) for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
    )
    if not msg_id or not raw_timestamp or not signatures:
        raise WebhookVerificationError("webhook-id, webhook-timestamp and webhook-signature headers are required")
    try:
        timestamp = int(raw_timestamp)
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not a number of seconds") from None
    age = (now or datetime.now(UTC)) - datetime.fromtimestamp(timestamp, UTC)
    if age > TOLERANCE:
        raise WebhookVerificationError("the webhook timestamp is too old (more than 5 minutes)")
    if age < -TOLERANCE:
        raise WebhookVerificationError("the webhook timestamp is in the future (more than 5 minutes)")
    expected = signature(secret, msg_id, timestamp, body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures.split()):
        raise WebhookVerificationError("no webhook signature matches the account's webhook secret")
    return msg_id
