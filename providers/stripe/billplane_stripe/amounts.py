"""billplane's ISO 4217 minor units to the amounts Stripe's API takes, and back, exactly.

Stripe counts most currencies in their ISO 4217 minor units, with three exceptions
(stripe.com/docs/currencies, "Zero-decimal currencies" and "Special cases"): ISK and UGX stay
two-decimal currencies in Stripe's API, although ISO 4217 gives them none (1500 ISK goes as
150000, 5 UGX as 500), and MGA is zero-decimal at Stripe, although ISO 4217 gives it two (150000
MGA minor units go as 1500, and 150050 cannot be sent). Stripe's page also lists UGX among its
zero-decimal currencies; its special case, which names the amount to send, is the one followed.
The three-decimal currencies (BHD, JOD, KWD, OMR, TND) are counted alike at both, but Stripe
takes only amounts whose last digit is 0 ("Three-decimal currencies"). An amount Stripe cannot
take is refused, never rounded.
"""

from __future__ import annotations

from decimal import Decimal

from billplane.plugins import ProviderError

# Stripe's decimals minus ISO 4217's, where they differ.
_SHIFT = {"ISK": 2, "UGX": 2, "MGA": -2}
# What a Stripe amount must be a multiple of, where not 1: Stripe's payment partners take the
# three-decimal currencies in hundredths only, and Stripe refuses an amount they would not take.
_STEP = dict.fromkeys(("BHD", "JOD", "KWD", "OMR", "TND"), 10)


def _scaled(amount: int, currency: str, direction: int) -> int | None:
    """``amount`` times 10 ** (``direction`` x the currency's shift), or None when that is not whole."""
    shift = direction * _SHIFT.get(currency.upper(), 0)
    factor: int = 10 ** abs(shift)
    if shift >= 0:
        return amount * factor
    whole, rest = divmod(amount, factor)
    return None if rest else whole


def to_stripe(minor: int, currency: str) -> int:
    """ISO 4217 minor units -> Stripe's ``amount``; ``ProviderError`` (``amount_not_supported``)
    for an amount Stripe would refuse, before any call: sent anyway, each retry fails again."""
    code = currency.upper()
    amount = _scaled(minor, code, 1)
    if amount is None:
        raise ProviderError(
            f"Stripe takes {code} in whole units: {minor} minor units cannot be sent",
            code="amount_not_supported",
        )
    step = _STEP.get(code, 1)
    if amount % step:
        raise ProviderError(
            f"Stripe takes {code} amounts whose last decimal is 0 (multiples of {step} minor units): "
            f"{minor} minor units cannot be sent",
            code="amount_not_supported",
        )
    return amount


def unit_to_stripe(unit: Decimal, currency: str) -> Decimal:
    """A tier's unit price, in ISO 4217 minor units (maybe fractional), in Stripe's units."""
    return unit.scaleb(_SHIFT.get(currency.upper(), 0))


def from_stripe(amount: int | None, currency: str | None) -> int | None:
    """Stripe's ``amount`` -> ISO 4217 minor units. None when Stripe did not say, and when no whole
    number of minor units holds it (a fractional krona or shilling, from before Stripe refused them):
    an amount not reported is handled as such by billplane, where a rounded one would be wrong."""
    if amount is None or currency is None:
        return None
    return _scaled(amount, currency, -1)
