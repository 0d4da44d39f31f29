"""Webhook events shaped like PayPal's documented samples (developer.paypal.com, "Webhook event
names" and the Subscriptions / Payments event payloads), with ids and times filled in."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

Json = dict[str, Any]
SUBSCRIPTION_ID = "I-BW452GLLEP1G"
SALE_ID = "80021663DE681814L"
CAPTURE_ID = "2GG279541U471931P"


def _time(at: datetime | None) -> str:
    return (at or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _envelope(event_type: str, resource_type: str, resource: Json, at: datetime | None, version: str) -> Json:
    return {
        "id": "WH-" + secrets.token_hex(10).upper(),
        "event_version": "1.0",
        "create_time": _time(at),
        "resource_type": resource_type,
        "resource_version": version,
        "event_type": event_type,
        "summary": f"{event_type.replace('.', ' ').title()}",
        "resource": resource,
        "links": [
            {"href": "https://api.paypal.com/v1/notifications/webhooks-events/WH-1", "rel": "self", "method": "GET"},
        ],
    }


def subscription_event(
    event_type: str,
    status: str,
    *,
    at: datetime | None = None,
    outstanding: str = "0.00",
    trial: bool = False,
    subscription_id: str = SUBSCRIPTION_ID,
) -> Json:
    cycles = [
        {"tenure_type": "REGULAR", "sequence": 2 if trial else 1, "cycles_completed": 0, "cycles_remaining": 0,
         "current_pricing_scheme_version": 1, "total_cycles": 0},
    ]  # fmt: skip
    if trial:
        cycles.insert(
            0,
            {"tenure_type": "TRIAL", "sequence": 1, "cycles_completed": 0, "cycles_remaining": 1, "total_cycles": 1},
        )
    resource = {
        "id": subscription_id,
        "status": status,
        "status_update_time": "2026-11-20T10:00:00Z",
        "plan_id": "P-5ML4271244454362WXNWU5NQ",
        "start_time": "2026-11-20T09:59:00Z",
        "quantity": "3",
        "custom_id": "billplane:42",
        "create_time": "2026-11-20T09:58:00Z",
        "update_time": "2026-11-20T10:00:00Z",
        "plan_overridden": False,
        "subscriber": {"name": {"given_name": "Ada", "surname": "Lovelace"}, "email_address": "ada@example.com"},
        "billing_info": {
            "outstanding_balance": {"currency_code": "USD", "value": outstanding},
            "cycle_executions": cycles,
            "last_payment": {"amount": {"currency_code": "USD", "value": "30.00"}, "time": "2026-11-20T10:00:05Z"},
            "next_billing_time": "2026-12-20T10:00:00Z",
            "failed_payments_count": 0 if outstanding == "0.00" else 1,
        },
        "links": [
            {"href": f"https://api.paypal.com/v1/billing/subscriptions/{subscription_id}", "rel": "self",
             "method": "GET"},
        ],
    }  # fmt: skip
    return _envelope(event_type, "subscription", resource, at, "2.0")


def sale_completed(
    *,
    total: str = "30.00",
    currency: str = "USD",
    at: datetime | None = None,
    subscription_id: str = SUBSCRIPTION_ID,
    sale_id: str = SALE_ID,
) -> Json:
    resource = {
        "id": sale_id,
        "state": "completed",
        "amount": {"total": total, "currency": currency, "details": {"subtotal": total}},
        "payment_mode": "INSTANT_TRANSFER",
        "protection_eligibility": "ELIGIBLE",
        "transaction_fee": {"value": "1.17", "currency": currency},
        "billing_agreement_id": subscription_id,
        "create_time": "2026-11-20T10:00:05Z",
        "update_time": "2026-11-20T10:00:05Z",
        "links": [{"href": f"https://api.paypal.com/v1/payments/sale/{sale_id}", "rel": "self", "method": "GET"}],
    }
    return _envelope("PAYMENT.SALE.COMPLETED", "sale", resource, at, "1.0")


def sale_refunded(
    event_type: str = "PAYMENT.SALE.REFUNDED",
    *,
    total: str = "5.00",
    currency: str = "USD",
    at: datetime | None = None,
    sale_id: str = SALE_ID,
    refund_id: str = "1JU08902781691411",
) -> Json:
    """A refund of a sale, in the shape of PayPal's sample: nothing in it names the refund's
    ``invoice_id`` (billplane's refund), which PayPal's specs give the sale refund no field for."""
    resource = {
        "id": refund_id,
        "state": "completed",
        "amount": {"total": total, "currency": currency},
        "sale_id": sale_id,
        "parent_payment": "PAY-5YK922393D847794YKER7MUI",
        "create_time": "2026-11-21T08:00:00Z",
        "update_time": "2026-11-21T08:00:00Z",
        "links": [
            {"href": f"https://api.paypal.com/v1/payments/refund/{refund_id}", "rel": "self", "method": "GET"},
            {"href": f"https://api.paypal.com/v1/payments/sale/{sale_id}", "rel": "sale", "method": "GET"},
        ],
    }
    if event_type == "PAYMENT.SALE.REVERSED":
        resource["reason_code"] = "BUYER_COMPLAINT"
    return _envelope(event_type, "refund", resource, at, "1.0")


def capture_completed(*, value: str = "20.00", currency: str = "USD", at: datetime | None = None) -> Json:
    resource = {
        "id": CAPTURE_ID,
        "status": "COMPLETED",
        "amount": {"currency_code": currency, "value": value},
        "final_capture": True,
        "seller_protection": {"status": "ELIGIBLE"},
        "custom_id": "billplane:9",
        "create_time": "2026-11-20T10:00:05Z",
        "update_time": "2026-11-20T10:00:05Z",
        "links": [
            {"href": f"https://api.paypal.com/v2/payments/captures/{CAPTURE_ID}", "rel": "self", "method": "GET"},
        ],
    }
    return _envelope("PAYMENT.CAPTURE.COMPLETED", "capture", resource, at, "2.0")


def capture_refunded(
    *, value: str = "5.00", currency: str = "USD", at: datetime | None = None, invoice_id: str | None = None
) -> Json:
    resource: Json = {
        "id": "1Y107995YT783435V",
        "status": "COMPLETED",
        "amount": {"currency_code": currency, "value": value},
        "note_to_payer": "Defective product",
        "create_time": "2026-11-21T08:00:00Z",
        "update_time": "2026-11-21T08:00:00Z",
        "links": [
            {"href": "https://api.paypal.com/v2/payments/refunds/1Y107995YT783435V", "rel": "self", "method": "GET"},
            {"href": f"https://api.paypal.com/v2/payments/captures/{CAPTURE_ID}", "rel": "up", "method": "GET"},
        ],
    }
    if invoice_id is not None:
        resource["invoice_id"] = invoice_id
    return _envelope("PAYMENT.CAPTURE.REFUNDED", "refund", resource, at, "2.0")
