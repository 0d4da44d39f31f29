"""What the sandbox accepts: every pricing model, checked as a strict processor would check it."""

from __future__ import annotations

import itertools
import re

from billplane.plugins import PriceData, ProviderError

_CURRENCY = re.compile(r"^[A-Za-z]{3}$")


def _refuse(message: str) -> ProviderError:
    return ProviderError(message, code="invalid_request")


MAX_METADATA_KEYS, MAX_KEY_LENGTH, MAX_VALUE_LENGTH = 50, 40, 500  # Stripe's limits


def check_metadata(metadata: dict[str, str]) -> None:
    if len(metadata) > MAX_METADATA_KEYS:
        raise _refuse(f"metadata holds at most {MAX_METADATA_KEYS} keys")
    if any(len(key) > MAX_KEY_LENGTH or len(value) > MAX_VALUE_LENGTH for key, value in metadata.items()):
        raise _refuse(f"metadata keys hold at most {MAX_KEY_LENGTH} characters, values {MAX_VALUE_LENGTH}")


def check_currency(currency: str) -> None:
    if not _CURRENCY.fullmatch(currency):
        raise _refuse(f"currency must be a three-letter ISO 4217 code, not {currency!r}")


def check_price(price: PriceData) -> None:
    check_currency(price.currency)
    if price.interval_count < 1:
        raise _refuse("interval_count must be at least 1")
    if price.trial_period_days is not None and price.trial_period_days < 0:
        raise _refuse("trial_period_days must not be negative")
    if price.pricing_model in {"tiered", "volume"}:
        _check_tiers(price)
        return
    if price.amount is None or price.amount < 0:
        raise _refuse(f"a {price.pricing_model} price needs an amount of at least 0")
    if price.tiers:
        raise _refuse(f"a {price.pricing_model} price has no tiers")
    if price.pricing_model == "package" and (price.package_size is None or price.package_size < 1):
        raise _refuse("a package price needs a package_size of at least 1")


def _check_tiers(price: PriceData) -> None:
    if not price.tiers:
        raise _refuse(f"a {price.pricing_model} price needs at least one tier")
    bounds = [tier.up_to for tier in price.tiers]
    if bounds[-1] is not None or None in bounds[:-1]:
        raise _refuse("only the last tier is open-ended (up_to null), and it must be")
    finite = [bound for bound in bounds if bound is not None]
    if any(low >= high for low, high in itertools.pairwise(finite)) or (finite and finite[0] < 1):
        raise _refuse("tier bounds (up_to) must be positive and increasing")
    if any(tier.unit_amount < 0 or tier.flat_amount < 0 for tier in price.tiers):
        raise _refuse("tier amounts must not be negative")
