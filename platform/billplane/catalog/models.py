"""Product, Plan, PlanFeature and PricingTier rows."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Integer, Numeric, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from billplane.db.base import TenantBase
from billplane.db.mixins import IdMixin, MetadataMixin, TimestampsMixin
from billplane.sync.columns import SyncStatusMixin

PRICING_MODELS = ("flat", "per_seat", "tiered", "volume", "package", "metered")
BILLING_INTERVALS = ("day", "week", "month", "year")
USAGE_AGGREGATIONS = ("sum", "max", "last")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


class Product(IdMixin, TimestampsMixin, MetadataMixin, SyncStatusMixin, TenantBase):
    """What a tenant sells. Its sync state is that of its edits' mirroring (``product.update``
    outbox rows): the product itself reaches a provider with the first subscription that needs it."""

    __tablename__ = "products"

    name: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, server_default="true")


class Plan(IdMixin, TimestampsMixin, MetadataMixin, SyncStatusMixin, TenantBase):
    """A price for a product: pricing model, amount or tiers, currency and billing interval.

    Its sync state is that of its archiving's mirroring (``plan.update`` outbox rows)."""

    __tablename__ = "plans"
    __table_args__ = (
        CheckConstraint(_one_of("pricing_model", PRICING_MODELS), name="pricing_model"),
        CheckConstraint(_one_of("billing_interval", BILLING_INTERVALS), name="billing_interval"),
        CheckConstraint(
            "usage_aggregation IS NULL OR " + _one_of("usage_aggregation", USAGE_AGGREGATIONS),
            name="usage_aggregation",
        ),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency"),
        CheckConstraint("amount IS NULL OR amount >= 0", name="amount"),
        CheckConstraint("interval_count >= 1", name="interval_count"),
        CheckConstraint("package_size IS NULL OR package_size >= 1", name="package_size"),
        CheckConstraint("trial_period_days IS NULL OR trial_period_days BETWEEN 0 AND 730", name="trial_period_days"),
        # The pricing-model rules the API enforces, kept by the database too: no writer (the
        # billing engine, a fix by hand) can store a plan whose price cannot be computed.
        CheckConstraint(
            "(pricing_model IN ('flat', 'per_seat', 'package', 'metered')) = (amount IS NOT NULL)",
            name="amount_by_model",
        ),
        CheckConstraint("(pricing_model = 'package') = (package_size IS NOT NULL)", name="package_size_by_model"),
        CheckConstraint(
            "(pricing_model = 'metered') = (usage_aggregation IS NOT NULL)", name="usage_aggregation_by_model"
        ),
    )

    product_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("products.id"), index=True)
    name: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    pricing_model: Mapped[str] = mapped_column(Text)
    # Minor units: per period (flat), per seat, per package or per metered unit.
    amount: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(Text)
    billing_interval: Mapped[str] = mapped_column(Text)
    interval_count: Mapped[int] = mapped_column(Integer, server_default="1")
    trial_period_days: Mapped[int | None] = mapped_column(Integer)
    package_size: Mapped[int | None] = mapped_column(BigInteger)
    usage_aggregation: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, server_default="true")

    tiers: Mapped[list[PricingTier]] = relationship(
        order_by="PricingTier.position", cascade="all, delete-orphan", lazy="selectin"
    )
    features: Mapped[list[PlanFeature]] = relationship(
        order_by="PlanFeature.key", cascade="all, delete-orphan", lazy="selectin"
    )


class PricingTier(IdMixin, TenantBase):
    """One tier of a tiered or volume plan; ``up_to`` NULL is the open-ended last tier."""

    __tablename__ = "pricing_tiers"
    __table_args__ = (
        UniqueConstraint("plan_id", "position"),
        CheckConstraint("up_to IS NULL OR up_to >= 1", name="up_to"),
        CheckConstraint("unit_amount >= 0 AND flat_amount >= 0", name="amounts"),
    )

    plan_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("plans.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    up_to: Mapped[int | None] = mapped_column(BigInteger)
    # Exact, possibly fractional minor units (0.5 cent per API call); rounded once, at the line.
    unit_amount: Mapped[Decimal] = mapped_column(Numeric(38, 12))
    flat_amount: Mapped[int] = mapped_column(BigInteger, server_default="0")


class PlanFeature(IdMixin, TenantBase):
    """An entitlement a plan grants: a flag or text value, or a numeric limit."""

    __tablename__ = "plan_features"
    __table_args__ = (
        UniqueConstraint("plan_id", "key"),
        CheckConstraint('"limit" IS NULL OR "limit" >= 0', name="limit"),
    )

    plan_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("plans.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(Text)
    value: Mapped[str | None] = mapped_column(Text)
    limit: Mapped[int | None] = mapped_column(BigInteger)
