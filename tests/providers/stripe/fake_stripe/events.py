"""Webhook events shaped like Stripe's, signed the way Stripe signs them."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

from .objects import fixture, new_id


def event(
    type_: str, obj: dict[str, Any], *, created: int, previous_attributes: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``previous_attributes``: what an ``*.updated`` or ``payment_method.detached`` event says changed."""
    data: dict[str, Any] = {"object": obj}
    if previous_attributes is not None:
        data["previous_attributes"] = previous_attributes
    return fixture("event", id=new_id("evt"), type=type_, created=created, data=data, api_version="2026-10-28.endive")


def signature(body: bytes, secret: str, timestamp: int) -> str:
    signed = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(payload: dict[str, Any], secrets: list[str], at: datetime) -> tuple[dict[str, str], bytes]:
    """``Stripe-Signature`` headers and body; several secrets give several ``v1`` signatures (a rotation)."""
    body = json.dumps(payload).encode()
    timestamp = int(at.timestamp())
    parts = [f"t={timestamp}", *(f"v1={signature(body, secret, timestamp)}" for secret in secrets)]
    return {"Stripe-Signature": ",".join(parts)}, body
