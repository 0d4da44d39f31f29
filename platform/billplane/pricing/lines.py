"""A plan's invoice lines for one billing period, one function per pricing model."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal

from billplane.pricing.aggregation import UsageValue, aggregate, in_period
from billplane.pricing.models import LineDraft, Period, PlanPricing, PricingError
from billplane.pricing.rounding import line_amount
from billplane.pricing.tiers import TierUse, graduated, volume


def period_lines(
    pricing: PlanPricing, period: Period, *, quantity: int = 1, usage: int | None = None
) -> list[LineDraft]:
    """The lines that bill ``period`` of a subscription to the plan priced by ``pricing``.

    ``quantity`` is the subscription's quantity (seats; the units of a tiered, volume or package
    plan); a flat plan ignores it. ``usage`` is a metered plan's aggregated usage for the period
    (see `metered_usage`), given for metered plans and only for them.
    """
    if type(quantity) is not int or quantity < 0:
        raise PricingError(f"a quantity is a whole number >= 0, not {quantity!r}")
    if (pricing.model == "metered") != (usage is not None):
        raise PricingError("usage is given for metered plans and only for them")
    if pricing.model == "metered":
        if type(usage) is not int or usage < 0:
            raise PricingError(f"usage is a whole number >= 0, not {usage!r}")
        quantity = usage
    return _BY_MODEL[pricing.model](pricing, period, quantity)


def metered_usage(pricing: PlanPricing, values: Iterable[UsageValue], period: Period) -> int:
    """The quantity a metered plan bills for ``period``: its values in the period, aggregated."""
    if pricing.usage_aggregation is None:
        raise PricingError(f"{pricing.model} plans are not metered")
    return aggregate(in_period(values, period), pricing.usage_aggregation)


def total(lines: Iterable[LineDraft]) -> int:
    """The sum of the lines' rounded amounts: nothing is rounded again after the line."""
    return sum(line.amount for line in lines)


def _line(
    pricing: PlanPricing,
    period: Period,
    description: str,
    quantity: int,
    unit_amount: Decimal,
    *,
    flat_amount: int = 0,
    tier: int | None = None,
) -> LineDraft:
    return LineDraft(
        description=description,
        quantity=quantity,
        unit_amount=unit_amount,
        amount=line_amount(quantity, unit_amount, flat_amount),
        currency=pricing.currency,
        period_start=period.start,
        period_end=period.end,
        tier=tier,
        plan_id=pricing.plan_id,
    )


def _amount(pricing: PlanPricing) -> Decimal:
    if pricing.amount is None:  # PlanPricing checked this; a guard for the type checker
        raise PricingError(f"{pricing.model} plans have an amount")
    return Decimal(pricing.amount)


def _flat(pricing: PlanPricing, period: Period, _quantity: int) -> list[LineDraft]:
    # A flat price is per period: the subscription's quantity does not multiply it.
    return [_line(pricing, period, pricing.name, 1, _amount(pricing))]


def _per_seat(pricing: PlanPricing, period: Period, quantity: int) -> list[LineDraft]:
    return [_line(pricing, period, f"{quantity} x {pricing.name}", quantity, _amount(pricing))]


def _tier_line(pricing: PlanPricing, period: Period, use: TierUse, description: str) -> LineDraft:
    # No units, no flat fee: a tier is charged only when something falls in it.
    flat = use.tier.flat_amount if use.units else 0
    if flat:
        description += " + flat fee"
    return _line(pricing, period, description, use.units, use.tier.unit_amount, flat_amount=flat, tier=use.index)


def _range(use: TierUse) -> str:
    if use.tier.up_to is None:
        return f"units {use.first_unit} and above"
    return f"units {use.first_unit}-{use.tier.up_to}"


def _tiered(pricing: PlanPricing, period: Period, quantity: int) -> list[LineDraft]:
    return [
        _tier_line(pricing, period, use, f"{pricing.name}: tier {use.index + 1} ({_range(use)})")
        for use in graduated(quantity, pricing.tiers)
    ]


def _volume(pricing: PlanPricing, period: Period, quantity: int) -> list[LineDraft]:
    use = volume(quantity, pricing.tiers)
    description = f"{quantity} x {pricing.name}: tier {use.index + 1} ({_range(use)}) for all units"
    return [_tier_line(pricing, period, use, description)]


def _package(pricing: PlanPricing, period: Period, quantity: int) -> list[LineDraft]:
    size = pricing.package_size
    if size is None:  # PlanPricing checked this; a guard for the type checker
        raise PricingError("package plans have a package_size")
    packages = -(-quantity // size)  # a started package is a whole package
    description = f"{pricing.name}: {quantity} units in {packages} x {size}-unit packages"
    return [_line(pricing, period, description, packages, _amount(pricing))]


def _metered(pricing: PlanPricing, period: Period, quantity: int) -> list[LineDraft]:
    description = f"{pricing.name}: {quantity} units ({pricing.usage_aggregation} of usage)"
    return [_line(pricing, period, description, quantity, _amount(pricing))]


_BY_MODEL: dict[str, Callable[[PlanPricing, Period, int], list[LineDraft]]] = {
    "flat": _flat,
    "per_seat": _per_seat,
    "tiered": _tiered,
    "volume": _volume,
    "package": _package,
    "metered": _metered,
}
