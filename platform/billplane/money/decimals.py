"""Exact decimals (fractional minor units) as the API shows them."""

from __future__ import annotations

from decimal import Decimal


def decimal_text(value: Decimal) -> str:
    """Plain notation, no exponent, no trailing zeros: ``0.125000000000`` -> "0.125", ``1E+3`` -> "1000"."""
    if value.is_zero():
        return "0"
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def whole_or_none(value: Decimal) -> int | None:
    """The value as an int when it is a whole number of minor units, else None."""
    return int(value) if value == value.to_integral_value() else None
