"""API shapes for products and plans.

Money is integer minor units (`Amount`) or, for tier unit prices only, a decimal string of minor
units that may be fractional (`unit_amount_decimal`). No field is a float.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from billplane.api.pattern_words import worded
from billplane.api.types import Amount, CurrencyCode, LongText, Metadata, Patch, ShortText, example_body
from billplane.catalog.models import Plan as PlanRow
from billplane.catalog.models import PlanFeature as PlanFeatureRow
from billplane.catalog.models import PricingTier as PricingTierRow
from billplane.catalog.models import Product as ProductRow
from billplane.db.mixins import MAX_ID
from billplane.money.decimals import decimal_text, whole_or_none

MAX_TIERS = 50
MAX_FEATURES = 100
# Decimal minor units: at most 12 integer digits (like `Amount`) and 12 decimals (the column's scale).
DECIMAL_PATTERN = r"^[0-9]{1,12}(\.[0-9]{1,12})?$"

PricingModel = Literal["flat", "per_seat", "tiered", "volume", "package", "metered"]
BillingInterval = Literal["day", "week", "month", "year"]
UsageAggregation = Literal["sum", "max", "last"]

RowId = Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)]
DecimalAmount = Annotated[
    str,
    msgspec.Meta(
        pattern=worded(
            DECIMAL_PATTERN, 'must be a decimal number in a string, such as "0.125" (up to 12 decimal places)'
        ),
        description="Non-negative decimal string of minor units, up to 12 decimal places.",
        examples=["0.125"],
    ),
]
UpTo = Annotated[int, msgspec.Meta(ge=1, le=MAX_ID, description="Last unit of the tier; `null` for the last tier.")]
IntervalCount = Annotated[
    int, msgspec.Meta(ge=1, le=365, description="Intervals per billing period; the period is at most one year.")
]
TrialDays = Annotated[int, msgspec.Meta(ge=0, le=730)]
PackageSize = Annotated[int, msgspec.Meta(ge=1, le=MAX_ID, description="Units per package.")]
FeatureKey = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
FeatureLimit = Annotated[int, msgspec.Meta(ge=0, le=MAX_ID)]


class ProductCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: ShortText
    description: LongText | None = None
    active: bool = True
    metadata: Metadata = msgspec.field(default_factory=dict)


class ProductUpdate(Patch):
    """Only the fields sent change; `null` clears `description`. `active=false` archives the product."""

    name: ShortText | msgspec.UnsetType = msgspec.UNSET
    description: LongText | msgspec.UnsetType | None = msgspec.UNSET
    active: bool | msgspec.UnsetType = msgspec.UNSET
    metadata: Metadata | msgspec.UnsetType = msgspec.UNSET


class Product(msgspec.Struct, kw_only=True):
    id: int
    name: str
    description: str | None
    active: bool
    metadata: dict[str, str]
    # Mirroring its edits (name, description, active) to the provider accounts that have it: none
    # (no edit to mirror), pending, synced, or failed with the provider's message in last_sync_error
    # (the next such edit is mirrored again).
    sync_status: str
    last_sync_error: str | None
    synced_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: ProductRow) -> Product:
        return cls(
            id=row.id,
            name=row.name,
            description=row.description,
            active=row.active,
            metadata=row.metadata_,
            sync_status=row.sync_status,
            last_sync_error=row.last_sync_error,
            synced_at=row.synced_at,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class PricingTierCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One tier: exactly one of `unit_amount` (whole minor units) or `unit_amount_decimal`.

    `up_to` null or omitted: the open-ended last tier.
    """

    up_to: UpTo | None = None
    unit_amount: Amount | None = None
    unit_amount_decimal: DecimalAmount | None = None
    flat_amount: Amount = 0


class PlanFeatureCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    key: FeatureKey
    value: LongText | None = None
    limit: FeatureLimit | None = None


Tiers = Annotated[list[PricingTierCreate], msgspec.Meta(max_length=MAX_TIERS)]
Features = Annotated[list[PlanFeatureCreate], msgspec.Meta(max_length=MAX_FEATURES)]


class PlanCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    product_id: RowId
    name: ShortText
    description: LongText | None = None
    pricing_model: PricingModel
    # Minor units per period (flat), per seat, per package or per metered unit; tiered plans use `tiers`.
    amount: Amount | None = None
    currency: CurrencyCode
    billing_interval: BillingInterval
    interval_count: IntervalCount = 1
    trial_period_days: TrialDays | None = None
    package_size: PackageSize | None = None
    usage_aggregation: UsageAggregation | None = None
    active: bool = True
    metadata: Metadata = msgspec.field(default_factory=dict)
    tiers: Tiers | None = None
    features: Features = msgspec.field(default_factory=list)


class PlanUpdate(Patch):
    """Only the fields sent change; `null` clears a field. Price fields change only while no subscription
    uses the plan, and any change to them re-checks the whole price: when `pricing_model` changes, send
    `null` for the fields the new model does not take (`amount`, `tiers`, `package_size`, ...).
    """

    name: ShortText | msgspec.UnsetType = msgspec.UNSET
    description: LongText | msgspec.UnsetType | None = msgspec.UNSET
    active: bool | msgspec.UnsetType = msgspec.UNSET
    metadata: Metadata | msgspec.UnsetType = msgspec.UNSET
    pricing_model: PricingModel | msgspec.UnsetType = msgspec.UNSET
    amount: Amount | msgspec.UnsetType | None = msgspec.UNSET
    currency: CurrencyCode | msgspec.UnsetType = msgspec.UNSET
    billing_interval: BillingInterval | msgspec.UnsetType = msgspec.UNSET
    interval_count: IntervalCount | msgspec.UnsetType = msgspec.UNSET
    package_size: PackageSize | msgspec.UnsetType | None = msgspec.UNSET
    usage_aggregation: UsageAggregation | msgspec.UnsetType | None = msgspec.UNSET
    tiers: Tiers | msgspec.UnsetType | None = msgspec.UNSET


class PricingTier(msgspec.Struct, kw_only=True):
    up_to: int | None
    # The unit price as an integer when it is whole, else null; `unit_amount_decimal` always has it exactly.
    unit_amount: int | None
    unit_amount_decimal: str
    flat_amount: int

    @classmethod
    def of(cls, row: PricingTierRow) -> PricingTier:
        return cls(
            up_to=row.up_to,
            unit_amount=whole_or_none(row.unit_amount),
            unit_amount_decimal=decimal_text(row.unit_amount),
            flat_amount=row.flat_amount,
        )


class PlanFeature(msgspec.Struct, kw_only=True):
    key: str
    value: str | None
    limit: int | None

    @classmethod
    def of(cls, row: PlanFeatureRow) -> PlanFeature:
        return cls(key=row.key, value=row.value, limit=row.limit)


class Plan(msgspec.Struct, kw_only=True):
    id: int
    product_id: int
    name: str
    description: str | None
    pricing_model: str
    amount: int | None
    currency: str
    billing_interval: str
    interval_count: int
    trial_period_days: int | None
    package_size: int | None
    usage_aggregation: str | None
    active: bool
    metadata: dict[str, str]
    tiers: list[PricingTier]
    features: list[PlanFeature]
    # Mirroring its archiving (active) to the provider accounts that have its price: none, pending,
    # synced, or failed with the provider's message.
    sync_status: str
    last_sync_error: str | None
    synced_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: PlanRow) -> Plan:
        return cls(
            id=row.id,
            product_id=row.product_id,
            name=row.name,
            description=row.description,
            pricing_model=row.pricing_model,
            amount=row.amount,
            currency=row.currency,
            billing_interval=row.billing_interval,
            interval_count=row.interval_count,
            trial_period_days=row.trial_period_days,
            package_size=row.package_size,
            usage_aggregation=row.usage_aggregation,
            active=row.active,
            metadata=row.metadata_,
            tiers=[PricingTier.of(tier) for tier in row.tiers],
            features=[PlanFeature.of(feature) for feature in row.features],
            sync_status=row.sync_status,
            last_sync_error=row.last_sync_error,
            synced_at=row.synced_at,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


ProductCreateBody = Annotated[
    ProductCreate, example_body("A product", {"name": "Analytics", "description": "Dashboards and exports"})
]
ProductUpdateBody = Annotated[ProductUpdate, example_body("Archive a product", {"active": False})]
PlanCreateBody = Annotated[
    PlanCreate,
    example_body(
        "Graduated API pricing with a free allowance",
        {
            "product_id": 1,
            "name": "API calls",
            "pricing_model": "tiered",
            "currency": "usd",
            "billing_interval": "month",
            "trial_period_days": 14,
            "tiers": [
                {"up_to": 1000, "unit_amount": 0},
                {"up_to": 100000, "unit_amount_decimal": "0.5"},
                {"up_to": None, "unit_amount_decimal": "0.25"},
            ],
            "features": [{"key": "seats", "limit": 5}, {"key": "sso", "value": "true"}],
        },
    ),
]
PlanUpdateBody = Annotated[
    PlanUpdate, example_body("Rename and archive", {"name": "API calls (2025)", "active": False})
]
