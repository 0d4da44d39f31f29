"""How many decimals billplane's amounts count in, for providers whose APIs count otherwise.

billplane's minor units are ISO 4217's (HUF 2, ISK 0, MGA 2). A provider's API may use other
decimals for a few currencies (PayPal: HUF and TWD in whole units; Stripe: ISK in hundredths, MGA
in whole units): its plugin converts both ways with this, and refuses an amount the provider
cannot hold rather than round it.
"""

from __future__ import annotations

from billplane.money.currencies import EXPONENTS
from billplane.plugins.errors import ProviderError


def minor_unit_exponent(currency: str) -> int:
    """ISO 4217's decimals for ``currency`` (USD 2, JPY 0, KWD 3); ``ProviderError`` for a code
    that is not an active ISO 4217 currency (a provider's event may carry anything)."""
    found = EXPONENTS.get(currency.upper())
    if found is None:
        raise ProviderError(f"{currency!r} is not an active ISO 4217 currency", code="currency_not_supported")
    return found
