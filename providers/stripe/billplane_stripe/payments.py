"""PaymentIntents, invoices and refunds to and from billplane's payment types."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import msgspec

from billplane.plugins import (
    ChargeRequest,
    ChargeResult,
    ChargeStatus,
    InvoiceStatus,
    ProviderError,
    ProviderInvoice,
    RefundRequest,
    RefundResult,
    RefundStatus,
)
from billplane_stripe.amounts import from_stripe, to_stripe
from billplane_stripe.subscriptions import timestamp

# With off_session=true Stripe mostly answers a payment that needs the customer with a card error,
# but some payment methods leave the PaymentIntent waiting on them even so.
WAITING_ON_CUSTOMER = frozenset({"requires_action", "requires_confirmation"})
# A PaymentIntent waiting on the customer is pending, not failed: they may still complete it, and
# a failed payment is charged again by dunning. `charge` cancels the ones it makes; one found later
# (its cancel never got through) stays pending until it settles or the tenant resolves it.
_CHARGE_STATUSES: dict[str, ChargeStatus] = {
    "succeeded": "succeeded",
    "processing": "pending",
    "requires_capture": "pending",
    **dict.fromkeys(WAITING_ON_CUSTOMER, "pending"),
}
_REFUND_STATUSES: dict[str, RefundStatus] = {
    "succeeded": "succeeded",
    "pending": "pending",
    "requires_action": "pending",
    "failed": "failed",
    "canceled": "failed",
}
_INVOICE_STATUSES: set[str] = {"draft", "open", "paid", "void", "uncollectible"}
_REFUND_REASONS = {"duplicate", "fraudulent", "requested_by_customer"}
# One Stripe account may serve several billplane tenants, whose payment and refund ids overlap, and
# a charge made without a customer has nothing else to tell them apart: the tenant id says whose.
_TENANT_KEY = "billplane_tenant_id"


def _id(value: object) -> str | None:
    """An id field that may be expanded into its object."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _upper(value: object) -> str | None:
    return value.upper() if isinstance(value, str) else None


def _tenant_metadata(tenant_id: int | None) -> dict[str, str]:
    # None: a caller that does not give the tenant (an adapter from before it was written).
    return {} if tenant_id is None else {_TENANT_KEY: str(tenant_id)}


def _of_tenant(metadata: object, tenant_id: int | None) -> bool:
    """Whether the metadata billplane wrote may be ``tenant_id``'s: the tenant id in it, if any,
    is that one (``tenant_id`` None checks nothing). An object without one was made before
    billplane wrote it, and is judged by the rest as it was then: taking such a charge for none
    would have dunning charge the customer again."""
    if tenant_id is None or not isinstance(metadata, Mapping):
        return True
    written = metadata.get(_TENANT_KEY)
    return written is None or written == str(tenant_id)


def payment_intent_params(
    request: ChargeRequest, payment_method: str, customer: str | None, *, tenant_id: int | None = None
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "amount": to_stripe(request.amount, request.currency),
        "currency": request.currency.lower(),
        "payment_method": payment_method,
        "confirm": True,
        "off_session": True,
        "metadata": {"billplane_payment_id": str(request.payment_id), **_tenant_metadata(tenant_id)},
    }
    if customer:
        params["customer"] = customer
    if request.description:
        params["description"] = request.description
    return params


def failure_code(error: Mapping[str, Any]) -> str | None:
    """Stripe's most precise reason: the issuer's decline code, else the error code."""
    code = error.get("decline_code") or error.get("code")
    return str(code) if code else None


def charge_from_payment_intent(intent: Mapping[str, Any], *, tenant_id: int | None = None) -> ChargeResult:
    """billplane's view of a PaymentIntent; it names billplane's payment only when it may be
    ``tenant_id``'s (a webhook of a shared account reaches every tenant's endpoint)."""
    raw = str(intent.get("status"))
    status: ChargeStatus = _CHARGE_STATUSES.get(raw, "failed")
    last_error = intent.get("last_payment_error")
    error = last_error if isinstance(last_error, Mapping) else {}
    code = failure_code(error) if status == "failed" else None
    if status == "failed" and code is None:
        code = raw  # requires_payment_method / canceled: still a reason
    currency = _upper(intent.get("currency"))
    # What moved, once it succeeded: less than asked when only part of it was captured. (Stripe's
    # published fixture shows a succeeded intent with 0 received, which no capture leaves.)
    received = _int(intent.get("amount_received")) if status == "succeeded" else None
    received = received or None
    return ChargeResult(
        provider_payment_id=str(intent["id"]),
        status=status,
        failure_code=code,
        failure_message=str(error["message"]) if status == "failed" and error.get("message") else None,
        amount=from_stripe(received if received is not None else _int(intent.get("amount")), currency),
        currency=currency,
        provider_customer_id=_id(intent.get("customer")),
        provider_invoice_id=_id(intent.get("invoice")),
        billplane_payment_id=_billplane_id(intent.get("metadata"), "billplane_payment_id", tenant_id),
    )


def _billplane_id(metadata: object, key: str, tenant_id: int | None) -> int | None:
    """The payment (or refund) id ``payment_intent_params`` (``refund_params``) put in the metadata
    under ``key``; anything else, or another tenant's, is not ours."""
    if not _of_tenant(metadata, tenant_id):
        return None
    value = metadata.get(key) if isinstance(metadata, Mapping) else None
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        return None
    number = int(value)
    return number if 1 <= number < 2**63 else None


_PREFERENCE = {"succeeded": 0, "pending": 1, "failed": 2}


def _sent_amount(request: ChargeRequest) -> int | None:
    """The ``amount`` ``payment_intent_params(request, ...)`` sent; None if it could not be sent."""
    try:
        return to_stripe(request.amount, request.currency)
    except ProviderError:
        return None


def is_charge_of(intent: Mapping[str, Any], request: ChargeRequest, *, tenant_id: int | None = None) -> bool:
    """Whether a listed PaymentIntent is the one ``payment_intent_params(request, ...)`` created.

    The billplane payment id in its metadata says so; the tenant id there, when written, must be
    ``tenant_id``, and amount, currency and customer must agree too, because one Stripe account
    may serve several billplane tenants (whose payment ids overlap), and each tenant's customers
    are its own, but a charge without a customer has none to compare.
    """
    metadata = intent.get("metadata")
    return (
        isinstance(metadata, Mapping)
        and metadata.get("billplane_payment_id") == str(request.payment_id)
        and _of_tenant(metadata, tenant_id)
        and _int(intent.get("amount")) == _sent_amount(request)
        and str(intent.get("currency")).lower() == request.currency.lower()
        and _id(intent.get("customer")) == (request.provider_customer_id or None)
    )


def best_match(intents: list[Mapping[str, Any]]) -> ChargeResult | None:
    """The charge to record among a payment's PaymentIntents (one, unless someone retried by hand):
    money that moved first, then money on its way, then the newest failure."""
    results = [charge_from_payment_intent(intent) for intent in sorted(intents, key=lambda i: -(i.get("created") or 0))]
    return min(results, key=lambda result: _PREFERENCE[result.status], default=None)


def invoice_payment_intent(invoice: Mapping[str, Any]) -> str | None:
    """The PaymentIntent that paid an invoice: ``payment_intent`` before API 2025-03-31, ``payments`` after."""
    direct = _id(invoice.get("payment_intent"))
    if direct:
        return direct
    payments = invoice.get("payments")
    data = payments.get("data") if isinstance(payments, Mapping) else None
    for entry in data if isinstance(data, list) else []:
        payment = entry.get("payment") if isinstance(entry, Mapping) else None
        found = _id(payment.get("payment_intent")) if isinstance(payment, Mapping) else None
        if found:
            return found
    return None


def invoice_subscription(invoice: Mapping[str, Any]) -> str | None:
    direct = _id(invoice.get("subscription"))
    if direct:
        return direct
    parent = invoice.get("parent")
    details = parent.get("subscription_details") if isinstance(parent, Mapping) else None
    return _id(details.get("subscription")) if isinstance(details, Mapping) else None


def charge_from_invoice(invoice: Mapping[str, Any]) -> ChargeResult:
    paid = invoice.get("status") == "paid"
    currency = _upper(invoice.get("currency"))
    return ChargeResult(
        provider_payment_id=invoice_payment_intent(invoice) or str(invoice["id"]),
        status="succeeded" if paid else "pending",
        amount=from_stripe(_int(invoice.get("amount_paid" if paid else "amount_due")), currency),
        currency=currency,
        provider_customer_id=_id(invoice.get("customer")),
        provider_invoice_id=str(invoice["id"]),
        provider_subscription_id=invoice_subscription(invoice),
    )


def abandoned(canceled: Mapping[str, Any], waited: str) -> ChargeResult:
    """The PaymentIntent ``charge`` canceled because it waited on the customer (status ``waited``)."""
    return msgspec.structs.replace(
        charge_from_payment_intent(canceled),
        status="failed",
        failure_code=waited,
        failure_message=f"the payment needed the customer's action ({waited}), which an off-session charge "
        "cannot ask for: billplane canceled the PaymentIntent at Stripe",
    )


def declined(error: Mapping[str, Any], request: ChargeRequest, fallback_id: str) -> ChargeResult:
    """A card error as a failed charge: the PaymentIntent Stripe made for it, or ``fallback_id``."""
    intent = error.get("payment_intent")
    charge = error.get("charge")
    return ChargeResult(
        provider_payment_id=_id(intent) or _id(charge) or fallback_id,
        status="failed",
        failure_code=failure_code(error) or "card_declined",
        failure_message=str(error.get("message") or "the card was declined"),
        amount=request.amount,
        currency=request.currency.upper(),
        provider_customer_id=request.provider_customer_id,
        provider_invoice_id=request.provider_invoice_id,
    )


def _refund_target(provider_payment_id: str) -> str | None:
    """The parameter naming a payment in Refund calls: a Charge (``ch_``, or ``py_`` for bank debits)
    or a PaymentIntent (``pi_``); None for an id of another kind."""
    if provider_payment_id.startswith(("ch_", "py_")):
        return "charge"
    return "payment_intent" if provider_payment_id.startswith("pi_") else None


def refund_params(request: RefundRequest, *, tenant_id: int | None = None) -> dict[str, Any]:
    # An id of another kind is sent as a PaymentIntent all the same: Stripe's refusal says why.
    target = _refund_target(request.provider_payment_id) or "payment_intent"
    params: dict[str, Any] = {
        target: request.provider_payment_id,
        "amount": to_stripe(request.amount, request.currency),
        "metadata": {"billplane_refund_id": str(request.refund_id), **_tenant_metadata(tenant_id)},
    }
    if request.reason in _REFUND_REASONS:
        params["reason"] = request.reason
    elif request.reason:
        params["metadata"]["billplane_reason"] = request.reason[:500]  # Stripe's metadata value limit
    return params


def refund_result(refund: Mapping[str, Any], *, tenant_id: int | None = None) -> RefundResult:
    """billplane's view of a Refund; it names billplane's refund only when it may be ``tenant_id``'s."""
    status = _REFUND_STATUSES.get(str(refund.get("status")), "pending")
    reason = refund.get("failure_reason")
    currency = _upper(refund.get("currency"))
    return RefundResult(
        provider_refund_id=str(refund["id"]),
        status=status,
        failure_message=str(reason) if status == "failed" and reason else None,
        provider_payment_id=_id(refund.get("payment_intent")) or _id(refund.get("charge")),
        amount=from_stripe(_int(refund.get("amount")), currency),
        currency=currency,
        billplane_refund_id=_billplane_id(refund.get("metadata"), "billplane_refund_id", tenant_id),
    )


# Stripe's largest page: a payment has few refunds, so one request nearly always lists them all.
REFUND_PAGE = 100


def refund_list_params(request: RefundRequest, created_after: datetime) -> dict[str, Any]:
    """``GET /v1/refunds`` for the refunds of the payment ``refund_params(request)`` refunded,
    created since ``created_after``.

    A payment id of another kind has no refunds list to read, and an empty answer would tell
    billplane that no money went back: refuse instead, before any call.
    """
    target = _refund_target(request.provider_payment_id)
    if target is None:
        raise ProviderError(
            f"refund {request.refund_id} of {request.provider_payment_id!r} cannot be looked up at Stripe: "
            "only refunds of a PaymentIntent (pi_) or a Charge (ch_, py_) can be listed",
            code="refund_lookup_unsupported",
        )
    return {
        target: request.provider_payment_id,
        "created": {"gte": int(created_after.timestamp())},
        "limit": REFUND_PAGE,
    }


def is_refund_of(refund: Mapping[str, Any], request: RefundRequest, *, tenant_id: int | None = None) -> bool:
    """Whether a listed refund of the payment is the one ``refund_params(request)`` created: its
    metadata names billplane's refund, and the tenant id there, when written, is ``tenant_id``
    (the list is already the payment's, so its tenant's; the tenant id makes sure of it)."""
    metadata = refund.get("metadata")
    return (
        isinstance(metadata, Mapping)
        and metadata.get("billplane_refund_id") == str(request.refund_id)
        and _of_tenant(metadata, tenant_id)
    )


def matching_refund(
    refunds: Iterable[Mapping[str, Any]], request: RefundRequest, *, tenant_id: int | None = None
) -> RefundResult | None:
    """The request's refund among the payment's, None when none carries its id.

    billplane sends a refund once (one outbox row, one idempotency key), so several matches are
    abnormal (someone sent it again by hand). The one match that has not failed is the answer
    (``refund_result`` reads Stripe's ``failed`` and ``canceled`` as failed), however many newer
    ones failed; when all failed, the newest by ``created`` (Stripe lists newest first and ``max``
    keeps the first of equals, so a tie within one second goes to the one Stripe listed first).
    Two or more not failed raise ``ProviderError`` (code ``refund_lookup_ambiguous``) naming them:
    whichever billplane took, the other's money went back or is on its way too, so the tenant
    must look rather than billplane guess.
    """
    matches = [refund for refund in refunds if is_refund_of(refund, request, tenant_id=tenant_id)]
    standing = [refund for refund in matches if refund_result(refund).status != "failed"]
    if len(standing) > 1:
        ids = ", ".join(str(refund.get("id")) for refund in standing)
        raise ProviderError(
            f"refund {request.refund_id} of {request.provider_payment_id!r} matches {len(standing)} refunds "
            f"at Stripe that have not failed ({ids}): billplane sends a refund once, so it cannot tell "
            "which one is its own",
            code="refund_lookup_ambiguous",
        )
    if standing:
        return _of_request(refund_result(standing[0]), request)
    if not matches:
        return None
    return _of_request(refund_result(max(matches, key=lambda refund: _int(refund.get("created")) or 0)), request)


def _of_request(found: RefundResult, request: RefundRequest) -> RefundResult:
    # Listed by the request's payment, so it is that payment's refund: a refund of a Charge reads
    # as its PaymentIntent's otherwise, and billplane would take it for another payment's.
    return msgspec.structs.replace(found, provider_payment_id=request.provider_payment_id)


def provider_invoice(invoice: Mapping[str, Any]) -> ProviderInvoice | None:
    """The invoice as billplane mirrors it; None when its amounts cannot be read (one no whole
    number of minor units holds, from before Stripe refused them): an amount read as 0 would show
    the invoice free, and record a failed payment of 0 that no refund could then be taken from."""
    raw = str(invoice.get("status"))
    status: InvoiceStatus = raw if raw in _INVOICE_STATUSES else "open"  # type: ignore[assignment]
    currency = _upper(invoice.get("currency"))
    total = from_stripe(_int(invoice.get("total")), currency)
    paid = from_stripe(_int(invoice.get("amount_paid")), currency)
    remaining = from_stripe(_int(invoice.get("amount_remaining")), currency)
    due = from_stripe(_int(invoice.get("amount_due")), currency)
    if total is None or paid is None:
        return None
    # What it no longer owes: paid, or covered by the customer's balance at Stripe, which Stripe's
    # amount_paid leaves out (billplane shows total - amount_paid as still due). Not for a voided
    # or written-off invoice: what it no longer asks for was not settled.
    settled = paid
    if remaining is not None and status in {"open", "paid"}:
        settled = min(max(total - remaining, paid), total)
    return ProviderInvoice(
        provider_id=str(invoice["id"]),
        status=status,
        currency=currency or "",
        total=total,
        amount_paid=settled,
        amount_due=due if due is not None else max(total - paid, 0),
        provider_customer_id=_id(invoice.get("customer")),
        provider_subscription_id=invoice_subscription(invoice),
        provider_payment_id=invoice_payment_intent(invoice),
        number=invoice.get("number") if isinstance(invoice.get("number"), str) else None,
        period_start=timestamp(invoice.get("period_start")),
        period_end=timestamp(invoice.get("period_end")),
    )
