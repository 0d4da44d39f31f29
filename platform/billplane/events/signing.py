"""Signing secrets and signatures of the Standard Webhooks scheme.

A secret is ``whsec_`` + base64 of 32 random bytes; the HMAC key is the decoded bytes. The
signature of a message is ``v1,`` + base64(HMAC-SHA256(key, "{msg_id}.{timestamp}.{body}")),
sent in ``webhook-signature`` beside ``webhook-id`` and ``webhook-timestamp``
(https://www.standardwebhooks.com/).

The spec's ``webhook-id`` is unique across all messages and the same when one is sent again. An
event id is unique only within its tenant's schema, so the message id also names the tenant (by
id: a slug may be reused after the tenant is deleted): two tenants sending to one receiver never
share an id. Nor is an event id unique in time: after a tenant's schema is restored in place from
a dump (docs/operations/backups.md), its identity continues from the dump's and new events take
ids already delivered. So the message id also names the event's writing transaction (``tx``,
ADR 0007), which differs for the new event: a server never gives out a transaction id twice
(xid8 never wraps). Retries and replays of an event keep its id, as the row keeps its ``tx``.

Events written before ``tenant_0011`` have ``tx`` 0 and say so (``..._0``): one shape for every
message id, and still unique, since no event written since gets transaction id 0.
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


def message_id(tenant_id: int, event_id: int, tx: int) -> str:
    """The ``webhook-id`` of an event: ``evt_<tenant id>_<event id>_<tx>`` (``tx`` 0 before tenant_0011)."""
    return f"evt_{tenant_id}_{event_id}_{tx}"


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
