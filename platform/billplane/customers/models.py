"""Customer and ProviderCustomer rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from billplane.db.base import TenantBase
from billplane.db.mixins import IdMixin, MetadataMixin, TimestampsMixin
from billplane.sync.columns import SyncStateMixin

_AFTER_SYNC_COLUMNS = 11  # added by tenant_0003 after the sync columns (sort_order 10)
_ADDED_BY_0005 = 30


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

    # The customer's ids at provider accounts ([{provider, provider_account_id,
    # provider_customer_id}]), kept equal to its provider_customers rows by the only two writers
    # (sync records an id, a provider's customer.deleted event forgets one). A copy, so that a
    # GET reads one table: the correlated subquery it replaces doubled the relations PostgreSQL
    # must open per request, which is what a request for a rarely seen tenant pays for.
    provider_ids: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, server_default=text("'[]'::jsonb"), sort_order=_AFTER_SYNC_COLUMNS
    )
    # Test-mode customers attached to a test clock live on its time (billing runs, trials, dunning).
    test_clock_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("test_clocks.id"), index=True, sort_order=_ADDED_BY_0005
    )


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
