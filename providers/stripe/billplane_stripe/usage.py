"""Metered usage as Stripe Billing Meter events, counted once per billplane usage record."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from billplane.plugins import UsageReport
from billplane_stripe.catalog import CUSTOMER_KEY, VALUE_KEY, meter_event_name


def identifier(tenant_id: int, usage_record_id: int) -> str:
    """Stripe drops a second event with the same identifier: a retry under a new key counts once."""
    return f"billplane-t{tenant_id}-usage-{usage_record_id}"


def meter_event_params(tenant_id: int, usage: UsageReport) -> dict[str, Any]:
    return {
        "event_name": meter_event_name(tenant_id, usage.plan_id),
        "identifier": identifier(tenant_id, usage.usage_record_id),
        "timestamp": int(usage.timestamp.timestamp()),
        "payload": {CUSTOMER_KEY: usage.provider_customer_id, VALUE_KEY: str(usage.quantity)},
    }


def is_duplicate(code: str | None, error: Mapping[str, Any]) -> bool:
    """Whether Stripe refused a meter event only because its identifier was already counted."""
    return code == "resource_already_exists" or (
        error.get("param") == "identifier" and "already" in str(error.get("message", ""))
    )
