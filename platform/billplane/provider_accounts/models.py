"""ProviderAccount rows: in the control schema, one per tenant account at a payment provider.

Control, not tenant, because code outside a tenant's request (the provider sync worker, inbound
webhooks addressed by account id, key rotation) must find an account and its tenant by id alone.
Tenant tables refer to accounts by plain integer id (no foreign key crosses schemas: Citus).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    LargeBinary,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from billplane_tenants import CONTROL_SCHEMA, ControlBase

MODES = ("test", "live")
STATUSES = ("active", "deleted")


class ProviderAccount(ControlBase):
    __tablename__ = "provider_accounts"
    __table_args__ = (
        CheckConstraint(f"mode IN {MODES!r}", name="mode"),
        CheckConstraint(f"status IN {STATUSES!r}", name="status"),
        CheckConstraint("(status = 'deleted') = (deleted_at IS NOT NULL)", name="deleted_at"),
        # A live account always has sealed credentials; a deleted one has none left to leak.
        CheckConstraint(
            "status = 'deleted' OR (credentials_ciphertext IS NOT NULL AND credentials_key_id IS NOT NULL)",
            name="credentials",
        ),
        CheckConstraint("status = 'active' OR (NOT is_default AND credentials_ciphertext IS NULL)", name="deleted"),
        # At most one default per (tenant, provider): where new objects are mirrored.
        Index(
            "uq_provider_accounts_default",
            "tenant_id",
            "provider",
            unique=True,
            postgresql_where=text("is_default AND status = 'active'"),
        ),
        Index(None, "tenant_id", "id"),
    )

    # BY DEFAULT, not ALWAYS: the id is drawn from the sequence before the insert, because the
    # ciphertexts' associated data names it (billplane.provider_accounts.vault).
    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(BigInteger, ForeignKey(f"{CONTROL_SCHEMA}.tenants.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(Text)
    mode: Mapped[str] = mapped_column(Text)
    label: Mapped[str | None] = mapped_column(Text)
    credentials_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    # The key that sealed both ciphertexts of the row (they are always sealed together).
    credentials_key_id: Mapped[str | None] = mapped_column(Text)
    # {field: "...4242"} for each of the provider's secret fields: enough to recognise, never to use.
    credentials_hint: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    webhook_secret_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    webhook_secret_hint: Mapped[str | None] = mapped_column(Text)
    is_default: Mapped[bool] = mapped_column(Boolean, server_default="false")
    status: Mapped[str] = mapped_column(Text, server_default="active")
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    last_checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_check_error: Mapped[str | None] = mapped_column(Text)
    # The webhook secret the last change replaced, accepted beside the new one until then.
    previous_webhook_secret_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    previous_webhook_secret_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    def __repr__(self) -> str:  # ciphertexts and hints stay out of logs and tracebacks
        return f"ProviderAccount(id={self.id!r}, tenant_id={self.tenant_id!r}, provider={self.provider!r})"
