"""What the pricing engine reads and writes: a plan's price, a billing period and invoice line drafts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Literal, cast, get_args

from billplane.money.currencies import EXPONENTS

if TYPE_CHECKING:
    from billplane.catalog.models import Plan

PricingModel = Literal["flat", "per_seat", "tiered", "volume", "package", "metered"]
Aggregation = Literal["sum", "max", "last"]
AMOUNT_MODELS: frozenset[str] = frozenset({"flat", "per_seat", "package", "metered"})
TIERED_MODELS: frozenset[str] = frozenset({"tiered", "volume"})
_MICROSECOND = timedelta(microseconds=1)


class PricingError(ValueError):
    """A price the engine cannot compute (the catalog's own rules make these unreachable from the API)."""


def _whole(value: object) -> bool:
    # bool is an int subclass and float is not money: both are refused where an amount is expected.
    return type(value) is int


@dataclass(frozen=True, slots=True)
class Tier:
    """Units up to ``up_to`` (None: no limit) at ``unit_amount`` minor units each, plus ``flat_amount``."""

    up_to: int | None
    unit_amount: Decimal
    flat_amount: int = 0

    def __post_init__(self) -> None:
        if self.up_to is not None and (not _whole(self.up_to) or self.up_to < 1):
            raise PricingError(f"a tier's up_to is a whole number >= 1 or None, not {self.up_to!r}")
        if type(self.unit_amount) is not Decimal or not self.unit_amount.is_finite() or self.unit_amount < 0:
            raise PricingError(f"a tier's unit_amount is a finite Decimal >= 0, not {self.unit_amount!r}")
        if not _whole(self.flat_amount) or self.flat_amount < 0:
            raise PricingError(f"a tier's flat_amount is whole minor units >= 0, not {self.flat_amount!r}")


@dataclass(frozen=True, slots=True)
class PlanPricing:
    """The price fields of a plan, checked once so that every line computation is total."""

    model: PricingModel
    currency: str
    # Minor units per period (flat), per seat, per package or per metered unit; None for tiered models.
    amount: int | None = None
    tiers: tuple[Tier, ...] = ()
    package_size: int | None = None
    usage_aggregation: Aggregation | None = None
    name: str = ""
    plan_id: int | None = None

    def __post_init__(self) -> None:
        if self.model not in get_args(PricingModel):
            raise PricingError(f"unknown pricing model {self.model!r}")
        if self.currency not in EXPONENTS:
            raise PricingError(f"{self.currency!r} is not an upper-case ISO 4217 currency code")
        self._check_amount()
        self._check_tiers()
        if (self.model == "package") != (self.package_size is not None):
            raise PricingError("package_size is given for package plans and only for them")
        if self.package_size is not None and (not _whole(self.package_size) or self.package_size < 1):
            raise PricingError(f"package_size is a whole number >= 1, not {self.package_size!r}")
        if (self.model == "metered") != (self.usage_aggregation is not None):
            raise PricingError("usage_aggregation is given for metered plans and only for them")
        if self.usage_aggregation is not None and self.usage_aggregation not in get_args(Aggregation):
            raise PricingError(f"unknown usage aggregation {self.usage_aggregation!r}")

    def _check_amount(self) -> None:
        if (self.model in AMOUNT_MODELS) != (self.amount is not None):
            raise PricingError(f"amount is given for {', '.join(sorted(AMOUNT_MODELS))} plans and only for them")
        if self.amount is not None and (not _whole(self.amount) or self.amount < 0):
            raise PricingError(f"amount is whole minor units >= 0, not {self.amount!r}")

    def _check_tiers(self) -> None:
        if self.model not in TIERED_MODELS:
            if self.tiers:
                raise PricingError(f"{self.model} plans have no tiers")
            return
        if not self.tiers or self.tiers[-1].up_to is not None:
            raise PricingError("tiered plans have at least one tier and the last one is open-ended")
        limits = [tier.up_to for tier in self.tiers[:-1]]
        if None in limits or limits != sorted(set(cast("list[int]", limits))):
            raise PricingError("tier up_to values increase and only the last tier is open-ended")

    @classmethod
    def of(cls, plan: Plan) -> PlanPricing:
        """The pricing of a catalog plan row (its tiers loaded, as the relationship does by default)."""
        return cls(
            model=cast("PricingModel", plan.pricing_model),
            currency=plan.currency,
            amount=plan.amount,
            tiers=tuple(Tier(tier.up_to, tier.unit_amount, tier.flat_amount) for tier in plan.tiers),
            package_size=plan.package_size,
            usage_aggregation=cast("Aggregation | None", plan.usage_aggregation),
            name=plan.name,
            plan_id=plan.id,
        )


@dataclass(frozen=True, slots=True)
class Period:
    """A half-open span of time ``[start, end)`` in aware datetimes."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise PricingError("period bounds are timezone-aware")
        if self.end <= self.start:
            raise PricingError("a period ends after it starts")

    @property
    def microseconds(self) -> int:
        return (self.end - self.start) // _MICROSECOND

    def __contains__(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


@dataclass(frozen=True, slots=True)
class LineDraft:
    """An invoice line before it is stored: every amount explained by quantity, tier, unit price, period.

    ``amount`` is ``quantity x unit_amount`` rounded half-even, plus the tier's flat amount on tier
    lines; proration lines are that amount scaled by time (credits negative). ``tier`` is the tier's
    index in the plan (0-based, the order of ``tiers`` in the API), None for untiered lines.
    """

    description: str
    quantity: int
    unit_amount: Decimal
    amount: int
    currency: str
    period_start: datetime
    period_end: datetime
    tier: int | None = None
    plan_id: int | None = None
    proration: bool = False
