"""Stripe PaymentMethods as billplane's ``ProviderPaymentMethod``: only what tells a person which
method it is, never anything that could pay with it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from billplane.plugins import ProviderPaymentMethod

# Payment method types whose details carry the account's last 4 digits (and nothing else billplane keeps).
_LAST4_ONLY = ("sepa_debit", "us_bank_account")


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _number(value: object) -> int | None:
    # bool is an int in Python: a malformed answer must not read as month 1.
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def owner(obj: Mapping[str, Any]) -> str | None:
    """The id of the customer the PaymentMethod is attached to (expanded or not), or None."""
    customer = obj.get("customer")
    if isinstance(customer, Mapping):
        customer = customer.get("id")
    return _text(customer)


def to_provider(obj: Mapping[str, Any]) -> ProviderPaymentMethod:
    kind = _text(obj.get("type")) or "card"
    details = obj.get(kind)
    details = details if isinstance(details, Mapping) else {}
    method_id = str(obj["id"])
    if kind == "card":
        return ProviderPaymentMethod(
            provider_payment_method_id=method_id,
            type=kind,
            brand=_text(details.get("brand")),
            last4=_text(details.get("last4")),
            exp_month=_number(details.get("exp_month")),
            exp_year=_number(details.get("exp_year")),
        )
    last4 = _text(details.get("last4")) if kind in _LAST4_ONLY else None
    return ProviderPaymentMethod(provider_payment_method_id=method_id, type=kind, last4=last4)


def in_event(obj: Mapping[str, Any]) -> ProviderPaymentMethod:
    """The method of a ``payment_method.*`` webhook, with the customer it is attached to now: None
    in ``payment_method.detached``, whose former customer is only in ``previous_attributes``."""
    return msgspec.structs.replace(to_provider(obj), provider_customer_id=owner(obj))


def customer_default(customer: Mapping[str, Any]) -> str | None:
    """The id of the customer's ``invoice_settings.default_payment_method`` (expanded or not),
    what Stripe's own invoices charge; None for none, and for a deleted customer."""
    settings = customer.get("invoice_settings")
    method = settings.get("default_payment_method") if isinstance(settings, Mapping) else None
    if isinstance(method, Mapping):
        method = method.get("id")
    return _text(method)
