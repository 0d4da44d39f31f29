"""API shapes for invoices and their lines.

Amounts are integer minor units of `currency`. A line's unit price may be fractional (0.125 cent
per API call): `unit_amount_decimal` always carries it exactly, as a decimal string, and
`unit_amount` repeats it as an integer only when it is whole. The line's `amount` is already
rounded (once, half-even); no float is involved anywhere.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Protocol

import msgspec

from billplane.api.types import Amount, CurrencyCode, Metadata, ShortText, example_body
from billplane.catalog.schemas import DecimalAmount, RowId
from billplane.invoices.models import Invoice as InvoiceRow
from billplane.invoices.models import InvoiceLine as InvoiceLineRow
from billplane.money.decimals import decimal_text, whole_or_none


class LineFields(Protocol):
    """What a line view shows of a line: a stored row, or one being written (the billing run)."""

    @property
    def description(self) -> str: ...
    @property
    def plan_id(self) -> int | None: ...
    @property
    def quantity(self) -> int: ...
    @property
    def tier(self) -> int | None: ...
    @property
    def amount(self) -> int: ...
    @property
    def currency(self) -> str: ...
    @property
    def period_start(self) -> datetime | None: ...
    @property
    def period_end(self) -> datetime | None: ...
    @property
    def proration(self) -> bool: ...


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
        return cls.of_fields(row.id, row, row.unit_amount)

    @classmethod
    def of_fields(cls, line_id: int, line: LineFields, unit_amount: Decimal) -> InvoiceLine:
        """The view of line ``line_id``, with ``unit_amount`` as stored."""
        return cls(
            id=line_id,
            description=line.description,
            plan_id=line.plan_id,
            quantity=line.quantity,
            unit_amount=whole_or_none(unit_amount),
            unit_amount_decimal=decimal_text(unit_amount),
            tier=line.tier,
            amount=line.amount,
            currency=line.currency,
            period_start=line.period_start,
            period_end=line.period_end,
            proration=line.proration,
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
    # manual, subscription_create, subscription_cycle or subscription_update.
    billing_reason: str
    # Failed payment attempts so far, and when dunning tries again (None: no retry scheduled).
    attempt_count: int
    next_payment_attempt_at: datetime | None
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
            billing_reason=row.billing_reason,
            attempt_count=row.attempt_count,
            next_payment_attempt_at=row.next_payment_attempt_at,
            lines=[InvoiceLine.of(line) for line in row.lines],
            metadata=row.metadata_,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


MAX_LINES = 100
Quantity = Annotated[int, msgspec.Meta(ge=1, le=1_000_000_000, description="Units billed; at least 1.")]
AwareTime = Annotated[datetime, msgspec.Meta(tz=True, description="With a time zone.")]


class LineCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One line of a manual invoice: `amount` is computed (quantity x unit price, rounded half-even).

    Give exactly one of `unit_amount` (whole minor units) and `unit_amount_decimal` (a decimal
    string of minor units that may be fractional).
    """

    description: ShortText
    quantity: Quantity = 1
    unit_amount: Amount | None = None
    unit_amount_decimal: DecimalAmount | None = None
    period_start: AwareTime | None = None
    period_end: AwareTime | None = None


Lines = Annotated[list[LineCreate], msgspec.Meta(max_length=MAX_LINES)]


class InvoiceCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A manual draft invoice for a customer."""

    customer_id: RowId
    currency: CurrencyCode
    lines: Lines = msgspec.field(default_factory=list)
    metadata: Metadata = msgspec.field(default_factory=dict)


class LinesAdd(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    lines: Lines = msgspec.field(default_factory=list)


class InvoiceFinalize(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # Days from finalization to `due_at`.
    days_until_due: Annotated[int, msgspec.Meta(ge=0, le=365)] = 30


class InvoicePay(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # Charge this payment method of the customer; default: the subscription's, else the customer's default.
    payment_method_id: RowId | None = None


InvoiceCreateBody = Annotated[
    InvoiceCreate,
    example_body(
        "A draft invoice with one line",
        {
            "customer_id": 1,
            "currency": "USD",
            "lines": [{"description": "Onboarding workshop", "quantity": 2, "unit_amount": 15000}],
        },
    ),
]
LinesAddBody = Annotated[
    LinesAdd,
    example_body(
        "Add a line", {"lines": [{"description": "API calls", "quantity": 1000, "unit_amount_decimal": "0.5"}]}
    ),
]
InvoiceFinalizeBody = Annotated[
    InvoiceFinalize | None, example_body("Due in two weeks (the body may be left out: 30 days)", {"days_until_due": 14})
]
InvoicePayBody = Annotated[
    InvoicePay | None,
    example_body("Charge a payment method (the body may be left out: the default one)", {"payment_method_id": 1}),
]
