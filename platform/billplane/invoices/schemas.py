"""API shapes for invoices and their lines (read-only until the billing engine writes them).

Amounts are integer minor units of `currency`. A line's unit price may be fractional (0.125 cent
per API call): `unit_amount_decimal` always carries it exactly, as a decimal string, and
`unit_amount` repeats it as an integer only when it is whole. The line's `amount` is already
rounded (once, half-even); no float is involved anywhere.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from billplane.invoices.models import Invoice as InvoiceRow
from billplane.invoices.models import InvoiceLine as InvoiceLineRow
from billplane.money.decimals import decimal_text, whole_or_none


class InvoiceLine(msgspec.Struct, kw_only=True):
    id: int
    description: str
    plan_id: int | None
    quantity: int
    # Minor units per unit, only when whole; `unit_amount_decimal` is always set and exact.
    unit_amount: int | None
    unit_amount_decimal: str
    # The pricing tier this line bills (tiered and volume plans); None for other pricing models.
    tier: int | None
    amount: int
    currency: str
    period_start: datetime | None
    period_end: datetime | None
    proration: bool

    @classmethod
    def of(cls, row: InvoiceLineRow) -> InvoiceLine:
        return cls(
            id=row.id,
            description=row.description,
            plan_id=row.plan_id,
            quantity=row.quantity,
            unit_amount=whole_or_none(row.unit_amount),
            unit_amount_decimal=decimal_text(row.unit_amount),
            tier=row.tier,
            amount=row.amount,
            currency=row.currency,
            period_start=row.period_start,
            period_end=row.period_end,
            proration=row.proration,
        )


class Invoice(msgspec.Struct, kw_only=True):
    id: int
    customer_id: int
    subscription_id: int | None
    # Gapless per-tenant number, set when the invoice is finalized.
    number: str | None
    # One of INVOICE_STATUSES: draft, open, paid, void, uncollectible.
    status: str
    currency: str
    subtotal: int
    total: int
    amount_paid: int
    amount_due: int
    period_start: datetime | None
    period_end: datetime | None
    due_at: datetime | None
    finalized_at: datetime | None
    paid_at: datetime | None
    voided_at: datetime | None
    lines: list[InvoiceLine]
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: InvoiceRow) -> Invoice:
        return cls(
            id=row.id,
            customer_id=row.customer_id,
            subscription_id=row.subscription_id,
            number=row.number,
            status=row.status,
            currency=row.currency,
            subtotal=row.subtotal,
            total=row.total,
            amount_paid=row.amount_paid,
            amount_due=row.amount_due,
            period_start=row.period_start,
            period_end=row.period_end,
            due_at=row.due_at,
            finalized_at=row.finalized_at,
            paid_at=row.paid_at,
            voided_at=row.voided_at,
            lines=[InvoiceLine.of(line) for line in row.lines],
            metadata=row.metadata_,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )
