"""The control schema: tenants, their API keys and migration bookkeeping.

Control tables always name their schema; tenant tables never do (see ``database.py``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

CONTROL_SCHEMA = "control"

# Deterministic constraint names, so migrations and models agree on every name.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

TENANT_STATUSES = ("active", "suspended")


class ControlBase(DeclarativeBase):
    metadata = MetaData(schema=CONTROL_SCHEMA, naming_convention=NAMING_CONVENTION)


class Tenant(ControlBase):
    __tablename__ = "tenants"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'suspended')", name="status"),
        CheckConstraint("migration_status IS NULL OR migration_status IN ('ok', 'failed')", name="migration_status"),
        # Both set (the operator's override) or both null (the process's default applies).
        CheckConstraint(
            "(rate_limit_per_second IS NULL) = (rate_limit_burst IS NULL)"
            " AND (rate_limit_per_second IS NULL OR rate_limit_per_second >= 0)"
            " AND (rate_limit_burst IS NULL OR rate_limit_burst >= 1)",
            name="rate_limit",
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    slug: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(Text)
    schema_name: Mapped[str] = mapped_column(Text, unique=True)
    status: Mapped[str] = mapped_column(Text, server_default="active")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    # What the tenant schema was last seen at, and how its last migration went.
    schema_revision: Mapped[str | None] = mapped_column(Text)
    migration_status: Mapped[str | None] = mapped_column(Text)
    migration_error: Mapped[str | None] = mapped_column(Text)
    migrated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The operator's request-rate override for this tenant (0 per second: unlimited); null: the
    # default of the API processes' settings. Read with the API key, so enforcing it costs no query.
    rate_limit_per_second: Mapped[int | None] = mapped_column(Integer)
    rate_limit_burst: Mapped[int | None] = mapped_column(Integer)


class ApiKey(ControlBase):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey(f"{CONTROL_SCHEMA}.tenants.id", ondelete="CASCADE"), index=True
    )
    prefix: Mapped[str] = mapped_column(Text)
    digest: Mapped[str] = mapped_column(Text, unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # What the key may do (billplane.api.scopes): "*" everything, the default and what keys made
    # before scopes existed keep; "read"; "<resource>:read" or "<resource>:write".
    scopes: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{*}'::text[]"))


class MigrationRun(ControlBase):
    __tablename__ = "migration_runs"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    target_revision: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    total: Mapped[int] = mapped_column(Integer, server_default="0")
    upgraded: Mapped[int] = mapped_column(Integer, server_default="0")
    failed: Mapped[int] = mapped_column(Integer, server_default="0")


class TenantMigration(ControlBase):
    """One tenant's outcome within one migration run (the history behind ``tenants.migration_*``)."""

    __tablename__ = "tenant_migrations"
    __table_args__ = (
        CheckConstraint("status IN ('ok', 'failed')", name="status"),
        Index(None, "tenant_id", "finished_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    run_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey(f"{CONTROL_SCHEMA}.migration_runs.id", ondelete="CASCADE"), index=True
    )
    tenant_id: Mapped[int] = mapped_column(BigInteger, ForeignKey(f"{CONTROL_SCHEMA}.tenants.id", ondelete="CASCADE"))
    from_revision: Mapped[str | None] = mapped_column(Text)
    to_revision: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
