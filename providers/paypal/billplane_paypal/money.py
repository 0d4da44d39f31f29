"""PayPal's decimal strings ("10.00", "1500") to integer minor units and back, exactly.

PayPal writes amounts in major units with as many decimals as the currency has; billplane counts
integer minor units. Conversion goes through ``Decimal`` only, and refuses anything that would
round: a lost cent is a bug, not a rounding choice.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from billplane.plugins import ProviderError

# PayPal's currency codes (developer.paypal.com/reference/currency-codes). HUF, JPY and TWD take
# no decimals in PayPal's API, although ISO 4217 gives HUF and TWD two.
_ZERO_DECIMALS = frozenset({"HUF", "JPY", "TWD"})
_TWO_DECIMALS = frozenset(
    {
        "AUD", "BRL", "CAD", "CNY", "CZK", "DKK", "EUR", "HKD", "ILS", "MYR", "MXN", "NOK", "NZD",
        "PHP", "PLN", "GBP", "RUB", "SGD", "SEK", "CHF", "THB", "USD",
    }
)  # fmt: skip


def exponent(currency: str) -> int:
    """The number of decimals PayPal uses for ``currency``; a currency PayPal lacks is refused."""
    code = currency.upper()
    if code in _ZERO_DECIMALS:
        return 0
    if code in _TWO_DECIMALS:
        return 2
    raise ProviderError(f"PayPal does not support the currency {code}", code="CURRENCY_NOT_SUPPORTED")


def to_minor(value: str, currency: str) -> int:
    """``"10.00"`` USD -> 1000; ``"1500"`` JPY -> 1500. A sign is kept; more decimals than the
    currency has (``"0.001"`` USD) is an error rather than a silent rounding."""
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise ProviderError(f"PayPal sent an amount that is not a number: {value!r}") from None
    if not amount.is_finite():
        raise ProviderError(f"PayPal sent an amount that is not a number: {value!r}")
    minor = amount.scaleb(exponent(currency))
    if minor != minor.to_integral_value():
        raise ProviderError(f"{value} {currency} is not a whole number of minor units")
    return int(minor)


def to_value(minor: int | Decimal, currency: str) -> str:
    """Integer (or, for tier unit prices, ``Decimal``) minor units -> PayPal's decimal string.

    Whole minor units always get exactly the currency's decimals (1000 USD -> ``"10.00"``); a
    fractional tier price keeps the extra digits it needs (``Decimal("0.5")`` USD -> ``"0.005"``).
    """
    places = exponent(currency)
    major = Decimal(minor).scaleb(-places)
    quantum = Decimal(1).scaleb(-places)
    exact = major.quantize(quantum)
    return format(exact if exact == major else major.normalize(), "f")
