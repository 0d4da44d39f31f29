"""Pricing-model rules for plans. Every problem is reported at once, each at its field path.

The request schemas already hold each field to its own range (amounts >= 0, `package_size` >= 1,
`interval_count` >= 1, known pricing models); this module checks what depends on several fields:
which fields a pricing model needs or forbids, the shape of tiers, and the length of the period.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from billplane.api.problems import FieldErrors, InvalidFieldError
from billplane.api.types import checked_currency
from billplane.catalog.schemas import DECIMAL_PATTERN, MAX_TIERS, PlanFeatureCreate, PricingTierCreate

# The longest billing period is one year, in each interval's unit.
MAX_INTERVAL_COUNT = {"day": 365, "week": 52, "month": 12, "year": 1}
_AMOUNT_MODELS = frozenset({"flat", "per_seat", "package", "metered"})
_TIERED_MODELS = frozenset({"tiered", "volume"})
_DECIMAL = re.compile(DECIMAL_PATTERN)
DEFAULT_USAGE_AGGREGATION = "sum"


@dataclass(frozen=True, slots=True)
class ProposedTerms:
    """The price fields of a plan as asked for: a create request, or a plan with a PATCH applied."""

    pricing_model: str
    amount: int | None
    currency: str
    billing_interval: str
    interval_count: int
    package_size: int | None
    usage_aggregation: str | None
    tiers: list[PricingTierCreate] | None


TERM_FIELDS = frozenset(ProposedTerms.__dataclass_fields__)


@dataclass(frozen=True, slots=True)
class TierTerms:
    up_to: int | None
    unit_amount: Decimal
    flat_amount: int


@dataclass(frozen=True, slots=True)
class PlanTerms:
    """Checked price fields, normalised: upper-case currency, default aggregation, exact tier prices."""

    pricing_model: str
    amount: int | None
    currency: str
    billing_interval: str
    interval_count: int
    package_size: int | None
    usage_aggregation: str | None
    tiers: tuple[TierTerms, ...]


def checked_terms(proposed: ProposedTerms, errors: FieldErrors) -> PlanTerms:
    """The normalised terms; each problem is added to ``errors`` (the caller raises them)."""
    model = proposed.pricing_model
    _check_fields_of_model(proposed, errors)
    tiers = _checked_tiers(proposed.tiers, errors) if model in _TIERED_MODELS else ()
    try:
        currency = checked_currency(proposed.currency)
    except InvalidFieldError as exc:
        errors.errors.extend(exc.errors)
        currency = proposed.currency
    longest = MAX_INTERVAL_COUNT.get(proposed.billing_interval)
    if longest is None:
        errors.add("billing_interval", f"one of {', '.join(MAX_INTERVAL_COUNT)}")
    elif proposed.interval_count > longest:
        errors.add(
            "interval_count",
            f"at most {longest} for billing_interval {proposed.billing_interval!r}: a period is at most one year",
        )
    aggregation = proposed.usage_aggregation
    if model == "metered" and aggregation is None:
        aggregation = DEFAULT_USAGE_AGGREGATION
    return PlanTerms(
        pricing_model=model,
        amount=proposed.amount,
        currency=currency,
        billing_interval=proposed.billing_interval,
        interval_count=proposed.interval_count,
        package_size=proposed.package_size,
        usage_aggregation=aggregation,
        tiers=tiers,
    )


def check_features(features: list[PlanFeatureCreate], errors: FieldErrors) -> None:
    seen: set[str] = set()
    for index, feature in enumerate(features):
        if feature.key in seen:
            errors.add(f"features[{index}].key", f"duplicate key {feature.key!r}: keys are unique within a plan")
        seen.add(feature.key)


def _check_fields_of_model(proposed: ProposedTerms, errors: FieldErrors) -> None:
    model = proposed.pricing_model
    if model in _AMOUNT_MODELS and proposed.amount is None:
        errors.add("amount", f"required for {model} plans")
    if model in _TIERED_MODELS and proposed.amount is not None:
        errors.add("amount", f"not allowed for {model} plans: the tiers set the price")
    if model == "package" and proposed.package_size is None:
        errors.add("package_size", "required for package plans: the units in one package")
    if model != "package" and proposed.package_size is not None:
        errors.add("package_size", f"not allowed for {model} plans")
    if model != "metered" and proposed.usage_aggregation is not None:
        errors.add("usage_aggregation", f"not allowed for {model} plans")
    if model not in _TIERED_MODELS and proposed.tiers is not None:
        errors.add("tiers", f"not allowed for {model} plans")


def _checked_tiers(tiers: list[PricingTierCreate] | None, errors: FieldErrors) -> tuple[TierTerms, ...]:
    if not tiers or len(tiers) > MAX_TIERS:
        errors.add("tiers", f"1 to {MAX_TIERS} tiers are required")
        return ()
    checked = []
    last = len(tiers) - 1
    previous: int | None = None
    for index, tier in enumerate(tiers):
        path = f"tiers[{index}]"
        if tier.up_to is None:
            if index != last:
                errors.add(f"{path}.up_to", "only the last tier is open-ended (null)")
        else:
            if index == last:
                errors.add(f"{path}.up_to", "the last tier must be open-ended (null)")
            if previous is not None and tier.up_to <= previous:
                errors.add(f"{path}.up_to", f"must be greater than the previous tier's up_to ({previous})")
            previous = tier.up_to
        checked.append(TierTerms(tier.up_to, _unit_amount(tier, path, errors), tier.flat_amount))
    return tuple(checked)


def _unit_amount(tier: PricingTierCreate, path: str, errors: FieldErrors) -> Decimal:
    if tier.unit_amount is not None and tier.unit_amount_decimal is not None:
        errors.add(f"{path}.unit_amount_decimal", "give unit_amount or unit_amount_decimal, not both")
    elif tier.unit_amount is not None:
        return Decimal(tier.unit_amount)
    elif tier.unit_amount_decimal is None:
        errors.add(f"{path}.unit_amount", "required: give unit_amount or unit_amount_decimal")
    elif not _DECIMAL.fullmatch(tier.unit_amount_decimal):
        errors.add(f"{path}.unit_amount_decimal", "a non-negative decimal string with at most 12 decimal places")
    else:
        return Decimal(tier.unit_amount_decimal)
    return Decimal(0)
