"""The ISO 4217 currencies billplane bills in, and their minor units."""

from __future__ import annotations

import pytest

from billplane.money.currencies import UnknownCurrencyError, exponent, normalize_currency


@pytest.mark.parametrize(
    ("code", "decimals"),
    [("USD", 2), ("jpy", 0), ("KWD", 3), ("UGX", 0), ("VED", 2), ("VES", 2), ("XCG", 2), ("ZWG", 2)],
)
def test_active_currencies_have_their_iso_minor_units(code: str, decimals: int) -> None:
    assert exponent(code) == decimals


@pytest.mark.parametrize("code", ["XAU", "XTS", "XXX", "HRK", "usdd", ""])
def test_metals_test_codes_and_withdrawn_currencies_are_refused(code: str) -> None:
    with pytest.raises(UnknownCurrencyError):
        normalize_currency(code)
