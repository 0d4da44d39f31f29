"""A billing run's writes of one tenant: the subscriptions moved on, and their invoices, already
finalized (numbered, ``open``, or ``paid`` when nothing is due) with their lines, in one statement.

Drafting invoices and finalizing them afterwards wrote every invoice row twice and read its lines
back; one statement per table cost a millisecond or two of parsing and planning each, in every
tenant (docs/performance.md, "Billing runs"). Inserting them numbered cannot leave a gap in the
numbers: the caller holds the subscriptions' locks (``FOR UPDATE``), so nobody else can bill their
periods while the transaction runs, and the statement leaves out every (subscription, period
start) billed already *before* it takes numbers from the counter row. The unique index
``uq_invoices_subscription_cycle`` stays the guard: should it still refuse a row, the statement
fails and the tenant's transaction rolls back whole, numbers included; nothing is skipped silently.

An invoice is keyed by (subscription, period start, billing reason): a boundary's are
``subscription_cycle``, keyed by the period that starts there; a pause that ends at its
``resume_at`` within a period bills the rest of that period (``subscription_update``, keyed by
``resume_at``), which the same statement leaves out when such an invoice exists already. It has no
unique index of its own: the subscription's lock, and its status written in the same statement
(no longer ``paused``), keep a second run from drafting it.

The events show each invoice as the API does, built from what was written (the statement returns
only what PostgreSQL chose: ids, numbers, timestamps): ``invoice.created`` (the draft, no number)
where the boundary happened, then ``invoice.finalized`` (and ``invoice.paid`` for an invoice of 0)
for each invoice in id order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Any

import msgspec

from billplane.billing.locked import LockedSubscription, Terms
from billplane.invoices import states
from billplane.invoices.schemas import Invoice as InvoiceView
from billplane.invoices.schemas import InvoiceFinalize
from billplane.invoices.schemas import InvoiceLine as InvoiceLineView
from billplane.pricing import LineDraft, Period

DAYS_UNTIL_DUE = InvoiceFinalize().days_until_due
CYCLE = "subscription_cycle"  # a boundary's invoice
UPDATE = "subscription_update"  # the rest of a period, billed when a pause ends at its resume_at
OPEN = states.target("finalize", "draft")
PAID = states.target("pay", OPEN)  # what finalizing an invoice of 0 leads to at once
_SCALE = 12  # invoice_lines.unit_amount is numeric(38, 12)
_STORED = Decimal(1).scaleb(-_SCALE)
_NUMERIC = Context(prec=38)  # as many digits as the column: quantizing must never run out of them

# What crossing a boundary can change on a subscription (besides updated_at), and its SQL type.
_SUBSCRIPTION_COLUMNS = {
    "id": "bigint",
    "status": "text",
    "plan_id": "bigint",
    "pending_plan_id": "bigint",
    "quantity": "integer",
    "pending_quantity": "integer",
    "current_period_start": "timestamptz",
    "current_period_end": "timestamptz",
    "canceled_at": "timestamptz",
    "ended_at": "timestamptz",
    "paused_at": "timestamptz",
    "resume_at": "timestamptz",
}
_INVOICE_COLUMNS = {"customer": "bigint", "subscription": "bigint", "currency": "text", "total": "bigint"}
_INVOICE_COLUMNS |= {"start": "timestamptz", "end": "timestamptz", "reason": "text"}
_LINE_COLUMNS = {
    # With "period", the line's invoice: a subscription's invoices of one run start at different
    # times (a resumed period's rest at its resume_at, within the period a boundary ends).
    "subscription": "bigint",
    "period": "timestamptz",
    "plan": "bigint",
    "description": "text",
    "quantity": "bigint",
    "unit": "numeric",
    "tier": "integer",
    "amount": "bigint",
    "currency": "text",
    "start": "timestamptz",
    "end": "timestamptz",
    "proration": "boolean",
}
_ITEM_COLUMNS = {"id": "bigint", "subscription": "bigint", "period": "timestamptz"}
_FIXED = ("open", "paid", "now", "due_at")


def _numbered(columns: dict[str, str], first: int) -> str:
    """``unnest($n::type[], ...)`` for ``columns``, numbered from ``first``."""
    return ", ".join(f"${first + n}::{kind}[]" for n, kind in enumerate(columns.values()))


def _statement() -> str:
    arrays = [_SUBSCRIPTION_COLUMNS, _INVOICE_COLUMNS, _LINE_COLUMNS, _ITEM_COLUMNS]
    starts = [1]
    for columns in arrays:
        starts.append(starts[-1] + len(columns))
    subscriptions, invoices, lines, items = (
        _numbered(columns, first) for columns, first in zip(arrays, starts, strict=False)
    )
    open_, paid, now, due_at = (f"${starts[-1] + n}" for n in range(len(_FIXED)))
    changed = [name for name in _SUBSCRIPTION_COLUMNS if name != "id"]
    return (
        "WITH moved AS (UPDATE subscriptions AS s SET "
        + ", ".join(f"{name} = u.{name}" for name in changed)
        + f", updated_at = now() FROM unnest({subscriptions}) AS u({', '.join(_SUBSCRIPTION_COLUMNS)}) "
        "WHERE s.id = u.id RETURNING 1), "
        f"u AS (SELECT * FROM unnest({invoices}) WITH ORDINALITY AS u(c, s, cur, t, ps, pe, r, n) "
        # A boundary's invoice is looked up by the partial unique index it has (the common path, as
        # before); the rest of a resumed period's, by its reason.
        f"WHERE CASE WHEN u.r = '{CYCLE}' THEN NOT EXISTS (SELECT FROM invoices i WHERE i.subscription_id = u.s "
        f"AND i.period_start = u.ps AND i.billing_reason = '{CYCLE}') ELSE NOT EXISTS (SELECT FROM invoices i "
        "WHERE i.subscription_id = u.s AND i.period_start = u.ps AND i.billing_reason = u.r) END), "
        # The counter row gives count(*) numbers at once, as InvoiceRepository.take_number gives one
        # (locked until the transaction ends; a rollback gives them back), in the drafts' order; ids
        # follow that order too (rows go in ORDER BY n).
        "counter AS (INSERT INTO invoice_counters (id, last_number) SELECT 1, count(*) FROM u HAVING count(*) > 0 "
        "ON CONFLICT (id) DO UPDATE SET last_number = invoice_counters.last_number + excluded.last_number "
        "RETURNING last_number - (SELECT count(*) FROM u) AS first), "
        "inv AS (INSERT INTO invoices (customer_id, subscription_id, number, status, currency, subtotal, total, "
        "period_start, period_end, billing_reason, finalized_at, due_at, paid_at) "
        "SELECT u.c, u.s, 'INV-' || (counter.first + row_number() OVER (ORDER BY u.n)), "
        f"CASE WHEN u.t = 0 THEN {paid}::text ELSE {open_}::text END, u.cur, u.t, u.t, u.ps, u.pe, "
        f"u.r, {now}::timestamptz, {due_at}::timestamptz, CASE WHEN u.t = 0 THEN {now}::timestamptz END "
        "FROM u, counter ORDER BY u.n "
        "RETURNING id, subscription_id, period_start, billing_reason, number, created_at, updated_at), "
        # Each line joins its invoice by (subscription, period start): a period billed already has none.
        "ln AS (INSERT INTO invoice_lines (invoice_id, plan_id, description, quantity, unit_amount, tier, amount, "
        "currency, period_start, period_end, proration) "
        "SELECT inv.id, l.plan, l.description, l.quantity, l.unit, l.tier, l.amount, l.currency, l.start, l.end_, "
        f"l.proration FROM unnest({lines}) WITH ORDINALITY AS l(s, ps, plan, description, quantity, unit, tier, "
        "amount, currency, start, end_, proration, n) "
        "JOIN inv ON inv.subscription_id = l.s AND inv.period_start = l.ps ORDER BY l.n RETURNING id, invoice_id), "
        "taken AS (UPDATE invoice_items AS it SET invoice_id = inv.id "
        f"FROM unnest({items}) AS x(id, s, ps) JOIN inv ON inv.subscription_id = x.s AND inv.period_start = x.ps "
        "WHERE it.id = x.id RETURNING 1) "
        "SELECT inv.subscription_id::bigint, inv.period_start::timestamptz, inv.billing_reason::text, "
        "inv.id::bigint, inv.number::text, "
        "inv.created_at::timestamptz, inv.updated_at::timestamptz, l.ids::bigint[] "
        "FROM inv LEFT JOIN (SELECT invoice_id, array_agg(id ORDER BY id) AS ids FROM ln GROUP BY invoice_id) l "
        "ON l.invoice_id = inv.id"
    )


_WRITE = _statement()


@dataclass(slots=True)
class PendingItem:
    """An invoice item (a proration) waiting for the subscription's next invoice, as a line; or a
    credit its customer was left by a subscription that ended (``subscription_id`` None)."""

    id: int
    customer_id: int
    subscription_id: int | None
    plan_id: int | None
    description: str
    quantity: int
    unit_amount: Decimal
    amount: int
    currency: str
    period_start: datetime | None
    period_end: datetime | None
    proration: bool
    tier: None = None


@dataclass(slots=True)
class Draft:
    """An invoice a boundary owes, written with the others of the batch."""

    customer_id: int
    subscription_id: int
    currency: str
    period: Period
    lines: list[LineDraft]
    items: list[PendingItem]
    amount: int  # the invoice's total: its lines' and items' amounts
    invoice_id: int | None = None
    reason: str = CYCLE  # its billing_reason, part of its key with the subscription and period start

    @property
    def key(self) -> tuple[int, datetime, str]:
        """What tells it from the subscription's other invoices (as the statement looks them up)."""
        return self.subscription_id, self.period.start, self.reason

    @property
    def all_lines(self) -> list[LineDraft | PendingItem]:
        """The invoice's lines in their order: the period's, then the pending items taken."""
        return [*self.lines, *self.items]


@dataclass(frozen=True, slots=True)
class Finalized:
    """A new invoice as charging needs it, and its events."""

    id: int
    customer_id: int
    subscription_id: int
    status: str
    currency: str
    amount_due: int
    terms: Terms  # the subscription's, as locked
    events: tuple[tuple[str, InvoiceView], ...]  # invoice.finalized (and invoice.paid), with their views


async def write_finalized(
    driver: Any,
    drafts: list[Draft],
    crossed: list[LockedSubscription],
    now: datetime,
    *,
    terms: dict[int, Terms],
) -> list[Finalized]:
    """Write the ``crossed`` subscriptions as they are now, and the drafts' invoices finalized at
    ``now`` with their lines; sets each draft's ``invoice_id`` (None: the period is billed already)
    and returns the new invoices in id order.

    ``now`` is the run's: the transaction's clock, or a test clock's frozen time, so a clocked
    customer's invoices are finalized and due in the clock's time."""
    if not crossed:
        return []
    firsts: dict[tuple[int, datetime, str], Draft] = {}
    for draft in drafts:
        # Only the first draft of a key is billed, as the unique index would have it (a canceled
        # subscription's last usage after its period was billed in this run).
        firsts.setdefault(draft.key, draft)
    billed = list(firsts.values())
    values: list[Any] = [[getattr(subscription, name) for subscription in crossed] for name in _SUBSCRIPTION_COLUMNS]
    values += [
        [draft.customer_id for draft in billed],
        [draft.subscription_id for draft in billed],
        [draft.currency for draft in billed],
        [draft.amount for draft in billed],
        [draft.period.start for draft in billed],
        [draft.period.end for draft in billed],
        [draft.reason for draft in billed],
    ]
    lines = [(draft, line) for draft in billed for line in draft.all_lines]
    values += [
        [draft.subscription_id for draft, _ in lines],
        [draft.period.start for draft, _ in lines],
        [line.plan_id for _, line in lines],
        [line.description for _, line in lines],
        [line.quantity for _, line in lines],
        [stored_unit(line.unit_amount) for _, line in lines],
        [line.tier for _, line in lines],
        [line.amount for _, line in lines],
        [line.currency for _, line in lines],
        [line.period_start for _, line in lines],
        [line.period_end for _, line in lines],
        [line.proration for _, line in lines],
    ]
    items = [(draft, item) for draft in billed for item in draft.items]
    values += [
        [item.id for _, item in items],
        [draft.subscription_id for draft, _ in items],
        [draft.period.start for draft, _ in items],
    ]
    due_at = now + timedelta(days=DAYS_UNTIL_DUE)
    values += [OPEN, PAID, now, due_at]
    written = {(row[0], row[1], row[2]): row[3:] for row in await driver.fetch(_WRITE, *values)}
    invoices = []
    for draft in billed:
        row = written.get(draft.key)
        if row is None:
            continue  # billed already (an earlier run that crashed after its commit, a test clock)
        draft.invoice_id, number, created_at, updated_at, line_ids = row
        view = InvoiceView(
            id=draft.invoice_id,
            customer_id=draft.customer_id,
            subscription_id=draft.subscription_id,
            number=number,
            status=OPEN if draft.amount else PAID,
            currency=draft.currency,
            subtotal=draft.amount,
            total=draft.amount,
            amount_paid=0,
            amount_due=draft.amount,
            period_start=draft.period.start,
            period_end=draft.period.end,
            due_at=due_at,
            finalized_at=now,
            paid_at=None if draft.amount else now,
            voided_at=None,
            billing_reason=draft.reason,
            attempt_count=0,
            next_payment_attempt_at=None,
            lines=[_line_view(line_id, line) for line_id, line in zip(line_ids or (), draft.all_lines, strict=True)],
            metadata={},
            created_at=created_at,
            updated_at=updated_at,
        )
        invoices.append(_finalized(view, terms[draft.subscription_id]))
    invoices.sort(key=_id)
    return invoices


def _id(invoice: Finalized) -> int:
    return invoice.id


def stored_unit(unit: Decimal) -> Decimal:
    """The unit price as the column keeps it (numeric rounds half away from zero at its scale)."""
    exponent = unit.as_tuple().exponent
    return unit.quantize(_STORED, ROUND_HALF_UP, _NUMERIC) if isinstance(exponent, int) and exponent < -_SCALE else unit


def _line_view(line_id: int, line: LineDraft | PendingItem) -> InvoiceLineView:
    return InvoiceLineView.of_fields(line_id, line, stored_unit(line.unit_amount))


def _finalized(view: InvoiceView, terms: Terms) -> Finalized:
    if view.status == PAID:
        finalized = msgspec.structs.replace(view, status=OPEN, paid_at=None)
        events: tuple[tuple[str, InvoiceView], ...] = (("invoice.finalized", finalized), ("invoice.paid", view))
    else:
        events = (("invoice.finalized", view),)
    assert view.subscription_id is not None  # noqa: S101 - a run's invoices are its subscriptions'
    return Finalized(
        view.id, view.customer_id, view.subscription_id, view.status, view.currency, view.amount_due, terms, events
    )
