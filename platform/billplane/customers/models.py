"""Customer and ProviderCustomer rows."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Text, UniqueConstraint, func, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, column_property, mapped_column

from billplane.db.base import TenantBase
from billplane.db.mixins import IdMixin, MetadataMixin, TimestampsMixin
from billplane.sync.columns import SyncStateMixin


class Customer(IdMixin, TimestampsMixin, MetadataMixin, SyncStateMixin, TenantBase):
    __tablename__ = "customers"
    __table_args__ = (
        # external_id is the tenant's own key for the customer: unique among live customers.
        Index(
            "uq_customers_external_id_live",
            "external_id",
            unique=True,
            postgresql_where=text("deleted_at IS NULL AND external_id IS NOT NULL"),
        ),
        Index("ix_customers_email_lower", text("lower(email)")),
    )

    email: Mapped[str | None] = mapped_column(Text)
    name: Mapped[str | None] = mapped_column(Text)
    external_id: Mapped[str | None] = mapped_column(Text)
    # Deleted customers are kept (invoices and payments point at them) but are gone from the API.
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    if TYPE_CHECKING:
        # The customer's ids at provider accounts, read in the same SELECT (mapped below).
        provider_ids: list[dict[str, Any]]


class ProviderCustomer(IdMixin, TimestampsMixin, TenantBase):
    """The customer's identity at one provider account (a Stripe customer id, say)."""

    __tablename__ = "provider_customers"
    __table_args__ = (
        UniqueConstraint("provider_account_id", "provider_customer_id"),
        UniqueConstraint("customer_id", "provider_account_id"),
    )

    customer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("customers.id"))
    provider: Mapped[str] = mapped_column(Text)
    # Provider accounts live in the control schema; no foreign key crosses schemas (Citus).
    provider_account_id: Mapped[int] = mapped_column(BigInteger)
    provider_customer_id: Mapped[str] = mapped_column(Text)


# A correlated subquery rather than a relationship: a customer's provider ids cost no extra round
# trip (the unique (customer_id, provider_account_id) index serves it).
_PROVIDER_ID_FIELDS = func.jsonb_build_object(
    "provider",
    ProviderCustomer.provider,
    "provider_account_id",
    ProviderCustomer.provider_account_id,
    "provider_customer_id",
    ProviderCustomer.provider_customer_id,
)
Customer.provider_ids = column_property(  # type: ignore[assignment]
    select(func.coalesce(func.jsonb_agg(_PROVIDER_ID_FIELDS), text("'[]'::jsonb"), type_=JSONB))
    .where(ProviderCustomer.customer_id == Customer.id)
    .correlate_except(ProviderCustomer)  # also when the outer query joins provider_customers
    .scalar_subquery()
)
