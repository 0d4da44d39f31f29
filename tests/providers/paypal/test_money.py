"""PayPal's decimal strings and billplane's integer minor units convert exactly, both ways."""

from __future__ import annotations

from decimal import Decimal

import pytest
from billplane_paypal.money import exponent, to_minor, to_value

from billplane.plugins import ProviderError, minor_unit_exponent


@pytest.mark.parametrize(
    ("value", "currency", "minor"),
    [
        ("10.00", "USD", 1000),
        ("0.01", "USD", 1),
        ("0.1", "USD", 10),
        ("1234567.89", "EUR", 123456789),
        ("-5.00", "USD", -500),
        ("1500", "JPY", 1500),
        ("1500.00", "JPY", 1500),  # PayPal may pad; still whole yen
        ("7", "HUF", 700),  # ISO 4217 gives HUF two decimals, PayPal none
        ("3", "TWD", 300),
        ("1500.00", "HUF", 150000),
        ("19.99", "usd", 1999),
    ],
)
def test_paypal_values_to_minor_units(value: str, currency: str, minor: int) -> None:
    assert to_minor(value, currency) == minor


@pytest.mark.parametrize(
    ("minor", "currency", "value"),
    [
        (1000, "USD", "10.00"),
        (1, "USD", "0.01"),
        (0, "USD", "0.00"),
        (1999, "GBP", "19.99"),
        (1500, "JPY", "1500"),
        (0, "JPY", "0"),
        (Decimal("0.5"), "USD", "0.005"),  # a fractional tier price keeps its digits
        (Decimal("12.25"), "USD", "0.1225"),
        (Decimal(100), "USD", "1.00"),
        (Decimal(3), "JPY", "3"),
        (150000, "HUF", "1500"),  # 1,500.00 Ft: PayPal writes whole forints
        (-700, "TWD", "-7"),
        (Decimal(150000), "HUF", "1500"),  # a tier price in whole forints, as an integer would be
    ],
)
def test_minor_units_to_paypal_values(minor: int | Decimal, currency: str, value: str) -> None:
    assert to_value(minor, currency) == value


@pytest.mark.parametrize(
    ("minor", "currency"),
    [
        (150050, "HUF"),
        (1, "HUF"),
        (99, "TWD"),
        # A tier unit price (Decimal) in a currency PayPal writes without decimals: no extra digits.
        (Decimal(150), "HUF"),
        (Decimal("150000.5"), "HUF"),
        (Decimal(99), "TWD"),
        (Decimal("2.5"), "JPY"),
    ],
)
def test_an_amount_paypal_cannot_write_is_refused_not_rounded(minor: int | Decimal, currency: str) -> None:
    with pytest.raises(ProviderError, match="cannot be sent") as refused:
        to_value(minor, currency)
    assert refused.value.code == "AMOUNT_NOT_SUPPORTED"


@pytest.mark.parametrize("currency", ["USD", "EUR", "JPY", "HUF", "GBP", "TWD"])
def test_round_trip_is_exact_for_many_amounts(currency: str) -> None:
    # A property over a spread of amounts (edges, powers of ten, odd values): no float anywhere.
    amounts = {0, 1, 9, 10, 99, 100, 101, 999, 1000, 123457, 10**9 + 7, 2**53 + 1}
    amounts |= {n * 37 + 3 for n in range(300)}
    whole_units = 10 ** (minor_unit_exponent(currency) - exponent(currency))  # 100 for HUF and TWD, else 1
    for minor in sorted(amount * whole_units for amount in amounts):
        value = to_value(minor, currency)
        assert to_minor(value, currency) == minor
        decimals = len(value.partition(".")[2])
        assert decimals == exponent(currency), value


@pytest.mark.parametrize(("value", "currency"), [("0.001", "USD"), ("10.5", "JPY"), ("abc", "USD"), ("NaN", "USD")])
def test_amounts_that_would_round_or_are_not_numbers_are_refused(value: str, currency: str) -> None:
    with pytest.raises(ProviderError):
        to_minor(value, currency)


def test_a_currency_paypal_lacks_is_refused() -> None:
    with pytest.raises(ProviderError, match="XYZ"):
        to_value(100, "XYZ")
