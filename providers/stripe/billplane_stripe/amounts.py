"""billplane's ISO 4217 minor units to the amounts Stripe's API takes, and back, exactly.

Stripe counts most currencies in their ISO 4217 minor units, with two exceptions
(stripe.com/docs/currencies, "Zero-decimal currencies" and "Special cases"): ISK stays a
two-decimal currency in Stripe's API, although ISO 4217 gives it none (1500 ISK goes as 150000),
and MGA is zero-decimal at Stripe, although ISO 4217 gives it two (150000 MGA minor units go as
1500, and 150050 cannot be sent). An amount Stripe cannot take is refused, never rounded.
"""

from __future__ import annotations

from decimal import Decimal

from billplane.plugins import ProviderError

# Stripe's decimals minus ISO 4217's, where they differ.
_SHIFT = {"ISK": 2, "MGA": -2}


def _scaled(amount: int, currency: str, direction: int) -> int | None:
    """``amount`` times 10 ** (``direction`` x the currency's shift), or None when that is not whole."""
    shift = direction * _SHIFT.get(currency.upper(), 0)
    factor: int = 10 ** abs(shift)
    if shift >= 0:
        return amount * factor
    whole, rest = divmod(amount, factor)
    return None if rest else whole


def to_stripe(minor: int, currency: str) -> int:
    """ISO 4217 minor units -> Stripe's ``amount``."""
    amount = _scaled(minor, currency, 1)
    if amount is None:
        raise ProviderError(
            f"Stripe takes {currency.upper()} in whole units: {minor} minor units cannot be sent",
            code="amount_not_supported",
        )
    return amount


def unit_to_stripe(unit: Decimal, currency: str) -> Decimal:
    """A tier's unit price, in ISO 4217 minor units (maybe fractional), in Stripe's units."""
    return unit.scaleb(_SHIFT.get(currency.upper(), 0))


def from_stripe(amount: int | None, currency: str | None) -> int | None:
    """Stripe's ``amount`` -> ISO 4217 minor units. None when Stripe did not say, and when no whole
    number of minor units holds it (a fractional krona, from before Stripe refused them in 2023):
    an amount not reported is handled as such by billplane, where a rounded one would be wrong."""
    if amount is None or currency is None:
        return None
    return _scaled(amount, currency, -1)
