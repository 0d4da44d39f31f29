"""PayPal's decimal strings ("10.00", "1500") to integer minor units and back, exactly.

PayPal writes amounts in major units with as many decimals as PayPal allows the currency;
billplane counts integer ISO 4217 minor units (``minor_unit_exponent``). The two differ for HUF
and TWD, which ISO 4217 gives two decimals and PayPal none: 150000 HUF minor units (1,500.00 Ft)
are ``"1500"`` at PayPal, and 150050 (1,500.50 Ft) cannot be sent at all. Conversion goes through
``Decimal`` only, and refuses anything that would round: a lost cent is a bug, not a rounding
choice.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from billplane.plugins import ProviderError, minor_unit_exponent

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
    """The number of decimals PayPal writes for ``currency`` (not always ISO 4217's); a currency
    PayPal lacks is refused."""
    code = currency.upper()
    if code in _ZERO_DECIMALS:
        return 0
    if code in _TWO_DECIMALS:
        return 2
    raise ProviderError(f"PayPal does not support the currency {code}", code="CURRENCY_NOT_SUPPORTED")


def to_minor(value: str, currency: str) -> int:
    """``"10.00"`` USD -> 1000; ``"1500"`` JPY -> 1500; ``"1500"`` HUF -> 150000. A sign is kept;
    more decimals than ISO 4217 minor units hold (``"0.001"`` USD) is an error rather than a silent
    rounding."""
    exponent(currency)  # a currency PayPal lacks is refused here too
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise ProviderError(f"PayPal sent an amount that is not a number: {value!r}") from None
    if not amount.is_finite():
        raise ProviderError(f"PayPal sent an amount that is not a number: {value!r}")
    minor = amount.scaleb(minor_unit_exponent(currency))
    if minor != minor.to_integral_value():
        raise ProviderError(f"{value} {currency} is not a whole number of minor units")
    return int(minor)


def to_value(minor: int | Decimal, currency: str) -> str:
    """Integer (or, for tier unit prices, ``Decimal``) ISO 4217 minor units -> PayPal's decimal string.

    Whole minor units always get exactly PayPal's decimals for the currency (1000 USD -> ``"10.00"``,
    150000 HUF -> ``"1500"``), and one PayPal cannot write (150050 HUF: half a forint) is refused;
    a fractional tier price keeps the extra digits it needs (``Decimal("0.5")`` USD -> ``"0.005"``)
    in a currency PayPal writes with decimals, and is refused in one it writes without (HUF, JPY,
    TWD: ``Decimal(150)`` HUF, 1.50 Ft, like 150050).
    """
    places = exponent(currency)
    major = Decimal(minor).scaleb(-minor_unit_exponent(currency))
    quantum = Decimal(1).scaleb(-places)
    exact = major.quantize(quantum)
    if exact == major:
        return format(exact, "f")
    # Extra digits are only a longer decimal fraction where PayPal takes one at all: for a currency
    # it takes without decimals they would be a decimal point PayPal refuses or misreads.
    if not isinstance(minor, Decimal) or places == 0:
        raise ProviderError(
            f"PayPal writes {currency.upper()} with {places} decimals: {major} {currency.upper()} cannot be sent",
            code="AMOUNT_NOT_SUPPORTED",
        )
    return format(major.normalize(), "f")
