"""What a plan or quantity change would bill, computed by the pricing engine; nothing is written."""

from __future__ import annotations

from datetime import datetime

import msgspec

from billplane.money.decimals import decimal_text, whole_or_none
from billplane.pricing import LineDraft, Period, PlanPricing, change_preview, period_lines, total
from billplane.subscriptions.periods import period_end


class PreviewLine(msgspec.Struct, kw_only=True):
    description: str
    quantity: int
    # Minor units per unit, as invoice lines show them: an integer only when whole (tier prices
    # may be fractional); `unit_amount_decimal` is always set and exact.
    unit_amount: int | None
    unit_amount_decimal: str
    tier: int | None
    amount: int
    period_start: datetime
    period_end: datetime
    proration: bool

    @classmethod
    def of(cls, line: LineDraft) -> PreviewLine:
        return cls(
            description=line.description,
            quantity=line.quantity,
            unit_amount=whole_or_none(line.unit_amount),
            unit_amount_decimal=decimal_text(line.unit_amount),
            tier=line.tier,
            amount=line.amount,
            period_start=line.period_start,
            period_end=line.period_end,
            proration=line.proration,
        )


class InvoicePreview(msgspec.Struct, kw_only=True):
    """The prorations billed now (credits negative) and the next period's invoice after the change."""

    proration: str
    effective_at: datetime
    currency: str
    lines: list[PreviewLine]
    # Negative when the credit for unused time is larger than the charge (a downgrade).
    total: int
    next_period_start: datetime
    next_period_end: datetime
    next_period_lines: list[PreviewLine]
    next_period_total: int


def preview(
    current: PlanPricing,
    new: PlanPricing,
    *,
    period: Period,
    at: datetime,
    proration: str,
    current_quantity: int,
    new_quantity: int,
    interval: tuple[str, int],
    anchor: datetime | None = None,
) -> InvoicePreview:
    change = change_preview(
        current,
        new,
        period,
        at,
        proration,  # type: ignore[arg-type]  # the schema allows exactly ChangeProration's values
        current_quantity=current_quantity,
        new_quantity=new_quantity,
    )
    following = Period(period.end, period_end(period.end, *interval, anchor))
    # Metered plans bill their usage in arrears: the next invoice's usage is not known yet.
    upcoming = [] if new.model == "metered" else period_lines(new, following, quantity=new_quantity)
    return InvoicePreview(
        proration=proration,
        effective_at=change.effective_at,
        currency=new.currency,
        lines=[PreviewLine.of(line) for line in change.lines],
        total=change.total,
        next_period_start=following.start,
        next_period_end=following.end,
        next_period_lines=[PreviewLine.of(line) for line in upcoming],
        next_period_total=total(upcoming),
    )
