"""API shapes for inbound webhooks."""

from __future__ import annotations

import msgspec


class WebhookReceipt(msgspec.Struct, kw_only=True):
    # Events stored by this delivery, and events already stored by an earlier delivery.
    received: int
    duplicates: int
