"""Which tiers a quantity uses: graduated (each tier prices its own units) or volume (one tier prices all)."""

from __future__ import annotations

from dataclasses import dataclass

from billplane.pricing.models import PricingError, Tier


@dataclass(frozen=True, slots=True)
class TierUse:
    """``units`` of a quantity priced by ``tiers[index]``, which covers units ``first_unit`` to its up_to."""

    index: int
    tier: Tier
    first_unit: int
    units: int


def _checked(quantity: int) -> None:
    if type(quantity) is not int or quantity < 0:
        raise PricingError(f"a quantity is a whole number >= 0, not {quantity!r}")


def graduated(quantity: int, tiers: tuple[Tier, ...]) -> list[TierUse]:
    """Each tier that holds at least one of the units, in order; zero units use the first tier alone.

    Tier ``i`` holds units ``previous up_to + 1`` to its own ``up_to`` (1 to ``up_to`` for the first).
    """
    _checked(quantity)
    uses: list[TierUse] = []
    below = 0  # units held by the tiers before this one
    for index, tier in enumerate(tiers):
        # Reached only while units remain above ``below`` (or for the first tier), so never empty.
        ceiling = quantity if tier.up_to is None else min(quantity, tier.up_to)
        uses.append(TierUse(index, tier, below + 1, ceiling - below))
        if tier.up_to is None or tier.up_to >= quantity:
            break
        below = tier.up_to
    return uses


def volume(quantity: int, tiers: tuple[Tier, ...]) -> TierUse:
    """The one tier whose range holds the total quantity; it prices every unit."""
    _checked(quantity)
    first_unit = 1
    for index, tier in enumerate(tiers):
        if tier.up_to is None or quantity <= tier.up_to:
            return TierUse(index, tier, first_unit, quantity)
        first_unit = tier.up_to + 1
    raise PricingError("the last tier is open-ended, so every quantity has a tier")
