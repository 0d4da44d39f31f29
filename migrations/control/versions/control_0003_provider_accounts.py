"""provider accounts: tenants' payment provider accounts, credentials sealed with AES-GCM

Revision ID: control_0003
Revises: control_0002
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "control_0003"
down_revision: str | None = "control_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "control"
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "provider_accounts",
        sa.Column("id", sa.BigInteger, sa.Identity(always=False), nullable=False),
        sa.Column("tenant_id", sa.BigInteger, nullable=False),
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("mode", sa.Text, nullable=False),
        sa.Column("label", sa.Text, nullable=True),
        sa.Column("credentials_ciphertext", sa.LargeBinary, nullable=True),
        sa.Column("credentials_key_id", sa.Text, nullable=True),
        sa.Column("credentials_hint", postgresql.JSONB, server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.Column("webhook_secret_ciphertext", sa.LargeBinary, nullable=True),
        sa.Column("webhook_secret_hint", sa.Text, nullable=True),
        sa.Column("is_default", sa.Boolean, server_default="false", nullable=False),
        sa.Column("status", sa.Text, server_default="active", nullable=False),
        sa.Column("deleted_at", TS, nullable=True),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", TS, server_default=sa.func.now(), nullable=False),
        sa.Column("last_checked_at", TS, nullable=True),
        sa.Column("last_check_error", sa.Text, nullable=True),
        sa.CheckConstraint("mode IN ('test', 'live')", name=op.f("ck_provider_accounts_mode")),
        sa.CheckConstraint("status IN ('active', 'deleted')", name=op.f("ck_provider_accounts_status")),
        sa.CheckConstraint(
            "(status = 'deleted') = (deleted_at IS NOT NULL)", name=op.f("ck_provider_accounts_deleted_at")
        ),
        sa.CheckConstraint(
            "status = 'deleted' OR (credentials_ciphertext IS NOT NULL AND credentials_key_id IS NOT NULL)",
            name=op.f("ck_provider_accounts_credentials"),
        ),
        sa.CheckConstraint(
            "status = 'active' OR (NOT is_default AND credentials_ciphertext IS NULL)",
            name=op.f("ck_provider_accounts_deleted"),
        ),
        # Tenant deletion removes the tenant's accounts with it: no orphaned credentials.
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            [f"{SCHEMA}.tenants.id"],
            name="fk_provider_accounts_tenant_id_tenants",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_provider_accounts"),
        schema=SCHEMA,
    )
    op.create_index(
        "uq_provider_accounts_default",
        "provider_accounts",
        ["tenant_id", "provider"],
        unique=True,
        schema=SCHEMA,
        postgresql_where=sa.text("is_default AND status = 'active'"),
    )
    op.create_index("ix_provider_accounts_tenant_id_id", "provider_accounts", ["tenant_id", "id"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_index("ix_provider_accounts_tenant_id_id", table_name="provider_accounts", schema=SCHEMA)
    op.drop_index("uq_provider_accounts_default", table_name="provider_accounts", schema=SCHEMA)
    op.drop_table("provider_accounts", schema=SCHEMA)
