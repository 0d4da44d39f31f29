"""Payments v2 refunds as billplane's ``RefundResult``: one mapping for the refund call's answer,
the refund read by its id (``refund_status``) and ``PAYMENT.CAPTURE.REFUNDED`` webhooks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from billplane.plugins import RefundResult
from billplane.plugins.contract import RefundStatus
from billplane_paypal.money import to_minor

Json = Mapping[str, Any]

# A v2 refund's ``status``; v1 sale refunds use the same words in lower case as their ``state``.
STATUSES: dict[str, RefundStatus] = {
    "COMPLETED": "succeeded",
    "PENDING": "pending",
    "FAILED": "failed",
    "CANCELLED": "failed",
}
# billplane's refund id travels as the refund's invoice_id, which PayPal gives back on the refund
# (its answer, its reads, its webhooks): a refund whose answer was lost can then be recognised.
# PayPal refuses an invoice_id already used for a refund on the account (DUPLICATE_INVOICE_ID),
# which also stops a second refund if a retry ever outlived its PayPal-Request-Id. Refund ids are
# per tenant, so the tenant's id is part of it: two tenants may connect one PayPal account.
_INVOICE_PREFIX = "billplane-refund-"


def invoice_id(tenant_id: int, refund_id: int) -> str:
    return f"{_INVOICE_PREFIX}{tenant_id}-{refund_id}"


def billplane_refund_id(refund: Json, tenant_id: int | None) -> int | None:
    """The refund id ``invoice_id`` made (``{tenant}-{refund}``, or ``{refund}`` as sent before the
    tenant was part of it); None for a refund billplane did not start (the dashboard), or one of
    another tenant than ``tenant_id`` on a PayPal account two tenants share."""
    value = refund.get("invoice_id")
    rest = value.removeprefix(_INVOICE_PREFIX) if isinstance(value, str) else ""
    parts = rest.split("-")
    if rest == value or len(parts) > 2 or not all(part.isascii() and part.isdigit() for part in parts):  # noqa: PLR2004
        return None
    if len(parts) == 2 and tenant_id is not None and int(parts[0]) != tenant_id:  # noqa: PLR2004
        return None
    number = int(parts[-1])
    return number if 1 <= number < 2**63 else None


def capture_id(refund: Json) -> str | None:
    """The refunded capture: a v2 refund names it only through its ``up`` link (.../captures/{id})."""
    for link in refund.get("links") or []:
        if isinstance(link, Mapping) and link.get("rel") == "up" and "/captures/" in str(link.get("href")):
            return str(link["href"]).rstrip("/").rsplit("/", 1)[-1]
    return None


def outcome(refund: Json, *, missing: str) -> tuple[RefundStatus, str | None]:
    """The status and, for a failed refund, why. An unknown status waits (``pending``): billplane
    asks again rather than settle a refund on a guess."""
    raw = str(refund.get("status", missing))
    status = STATUSES.get(raw, "pending")
    if status != "failed":
        return status, None
    details = refund.get("status_details")
    reason = details.get("reason") if isinstance(details, Mapping) else None
    if reason:
        return status, str(reason)
    return status, "PayPal cancelled the refund" if raw == "CANCELLED" else "PayPal refused the refund"


def from_v2(
    refund: Json, *, tenant_id: int | None, missing: str = "PENDING", refund_id: str | None = None
) -> RefundResult:
    """The whole refund, as ``tenant_id``'s adapter reads it; ``missing`` is the status assumed
    when the body has none, ``refund_id`` the id it was read by."""
    status, failure = outcome(refund, missing=missing)
    amount = refund.get("amount")
    money = amount if isinstance(amount, Mapping) else {}
    currency = str(money["currency_code"]).upper() if money.get("currency_code") else None
    value = money.get("value")
    return RefundResult(
        provider_refund_id=refund_id or str(refund["id"]),
        status=status,
        failure_message=failure,
        provider_payment_id=capture_id(refund),
        amount=abs(to_minor(str(value), currency)) if value is not None and currency else None,
        currency=currency,
        billplane_refund_id=billplane_refund_id(refund, tenant_id),
    )
