"""Signing secrets and signatures of the Standard Webhooks scheme.

A secret is ``whsec_`` + base64 of 32 random bytes; the HMAC key is the decoded bytes. The
signature of a message is ``v1,`` + base64(HMAC-SHA256(key, "{msg_id}.{timestamp}.{body}")),
sent in ``webhook-signature`` beside ``webhook-id`` and ``webhook-timestamp``
(https://www.standardwebhooks.com/).

The spec's ``webhook-id`` is unique across all messages and the same when one is sent again. An
event id is unique only within its tenant's schema, so the message id also names the tenant (by
id: a slug may be reused after the tenant is deleted): two tenants sending to one receiver never
share an id, and retries and replays of an event keep its id.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
SECRET_BYTES = 32


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def message_id(tenant_id: int, event_id: int) -> str:
    """The ``webhook-id`` of an event: ``evt_<tenant id>_<event id>``."""
    return f"evt_{tenant_id}_{event_id}"


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, msg_id, timestamp, body),
    }
