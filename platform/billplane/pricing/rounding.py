"""The one place an amount is rounded: at the line, half-even, to a whole minor unit.

Half-even (banker's rounding) because an invoice run prices many lines: rounding halves always up
would add a systematic half unit to a share of them; half-even rounds as many halves down as up.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal, Inexact, InvalidOperation, Overflow

# Exact products: a NUMERIC(38,12) unit price times a 19-digit quantity fits in 60 digits; the
# traps turn any silent rounding of an intermediate value into an error instead of a wrong amount.
_EXACT = Context(prec=80, rounding=ROUND_HALF_EVEN, traps=[Inexact, InvalidOperation, Overflow])


def line_amount(quantity: int, unit_amount: Decimal, flat_amount: int = 0) -> int:
    """``quantity x unit_amount`` computed exactly, rounded half-even once, plus a whole flat amount."""
    exact = _EXACT.multiply(Decimal(quantity), unit_amount)
    return int(exact.to_integral_value(rounding=ROUND_HALF_EVEN)) + flat_amount


def divide_half_even(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half-even, in integers only (no Decimal precision limit)."""
    if denominator <= 0:
        raise ValueError("the denominator must be positive")
    quotient, remainder = divmod(numerator, denominator)
    # divmod floors, so the remainder is in [0, denominator): compare twice it with the denominator.
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2 == 1):
        quotient += 1
    return quotient
