"""Manual invoice lines: checked, priced and rounded once, at the line, half-even."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, localcontext

from billplane.api.problems import FieldErrors
from billplane.api.types import EARLIEST, LATEST
from billplane.invoices.models import Invoice, InvoiceLine
from billplane.invoices.schemas import LineCreate

# Like `Amount`: what any one line, and an invoice's total, may come to.
MAX_AMOUNT = 999_999_999_999
# Enough digits for the largest unit price (24 digits) times the largest quantity (10): never rounded
# before the one rounding at the line.
_PRECISION = 60


def line_amount(quantity: int, unit: Decimal) -> int:
    """quantity x unit price in minor units, rounded half-even (banker's rounding: no drift upwards)."""
    with localcontext() as context:
        context.prec = _PRECISION
        return int((unit * quantity).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def line_rows(lines: list[LineCreate], currency: str, invoice: Invoice | None = None) -> list[InvoiceLine]:
    """The lines as rows in ``currency``; one 422 naming every line field at fault (``lines[2].quantity``)."""
    errors = FieldErrors()
    if not lines:
        errors.add("lines", "give at least one line")
    rows = []
    total = invoice.total if invoice is not None else 0
    for index, line in enumerate(lines):
        path = f"lines[{index}]"
        if (line.unit_amount is None) == (line.unit_amount_decimal is None):
            errors.add(f"{path}.unit_amount", "give exactly one of unit_amount and unit_amount_decimal")
            continue
        unit = Decimal(line.unit_amount) if line.unit_amount is not None else Decimal(str(line.unit_amount_decimal))
        for name, moment in (("period_start", line.period_start), ("period_end", line.period_end)):
            if moment is not None and not EARLIEST <= moment < LATEST:
                errors.add(f"{path}.{name}", "must fall between 1970-01-01 and 2200-01-01")
        if line.period_start is not None and line.period_end is not None and line.period_end <= line.period_start:
            errors.add(f"{path}.period_end", "must be after period_start")
        amount = line_amount(line.quantity, unit)
        if amount > MAX_AMOUNT:
            errors.add(f"{path}.quantity", f"quantity x unit price comes to more than {MAX_AMOUNT} minor units")
            continue
        total += amount
        rows.append(
            InvoiceLine(
                description=line.description,
                quantity=line.quantity,
                unit_amount=unit,
                amount=amount,
                currency=currency,
                period_start=line.period_start,
                period_end=line.period_end,
                proration=False,
            )
        )
    if total > MAX_AMOUNT:
        errors.add("lines", f"the invoice's total would come to more than {MAX_AMOUNT} minor units")
    errors.raise_any()
    return rows
