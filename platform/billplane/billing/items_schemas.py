"""The API's view of an invoice item: a proration charge or credit waiting for an invoice, or taken."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Protocol

import msgspec

from billplane.api.types import CurrencyCode, ShortText, example_body
from billplane.catalog.schemas import RowId
from billplane.invoices.lines import MAX_AMOUNT
from billplane.money.decimals import decimal_text, whole_or_none

SignedAmount = Annotated[
    int, msgspec.Meta(ge=-MAX_AMOUNT, le=MAX_AMOUNT, description="Integer minor units: a charge > 0, a credit < 0.")
]


class ItemRow(Protocol):
    id: int
    customer_id: int
    subscription_id: int | None
    invoice_id: int | None
    plan_id: int | None
    description: str
    quantity: int
    unit_amount: Decimal
    amount: int
    currency: str
    period_start: datetime | None
    period_end: datetime | None
    proration: bool
    created_at: datetime


class InvoiceItem(msgspec.Struct, kw_only=True):
    id: int
    customer_id: int
    # None: a credit its subscription left when it ended; the customer's next invoice in its currency takes it.
    subscription_id: int | None
    # The invoice that took it; None while it waits.
    invoice_id: int | None
    plan_id: int | None
    description: str
    quantity: int
    # Minor units per unit, only when whole; `unit_amount_decimal` is always set and exact.
    unit_amount: int | None
    unit_amount_decimal: str
    # Negative for a credit.
    amount: int
    currency: str
    period_start: datetime | None
    period_end: datetime | None
    proration: bool
    created_at: datetime

    @classmethod
    def of(cls, row: ItemRow) -> InvoiceItem:
        return cls(
            id=row.id,
            customer_id=row.customer_id,
            subscription_id=row.subscription_id,
            invoice_id=row.invoice_id,
            plan_id=row.plan_id,
            description=row.description,
            quantity=row.quantity,
            unit_amount=whole_or_none(row.unit_amount),
            unit_amount_decimal=decimal_text(row.unit_amount),
            amount=row.amount,
            currency=row.currency,
            period_start=row.period_start,
            period_end=row.period_end,
            proration=row.proration,
            created_at=row.created_at,
        )


class InvoiceItemCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A one-off charge (`amount` > 0) or credit (< 0) for the customer's next invoice; with
    `subscription_id`, for that subscription's next invoice."""

    customer_id: RowId
    amount: SignedAmount
    currency: CurrencyCode
    description: ShortText
    subscription_id: RowId | None = None


InvoiceItemCreateBody = Annotated[
    InvoiceItemCreate,
    example_body(
        "A setup fee on the customer's next invoice",
        {"customer_id": 1, "amount": 5000, "currency": "USD", "description": "Setup fee"},
    ),
]
