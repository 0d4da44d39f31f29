"""pending payment checks: when billplane last asked a provider about a charge it holds as pending

Revision ID: tenant_0009
Revises: tenant_0008
Create Date: 2026-11-28 06:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "tenant_0009"
down_revision: str | None = "tenant_0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Expand only: a nullable column and a partial index; the previous app version ignores both.
    op.add_column("payments", sa.Column("provider_checked_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_payments_pending_at_provider",
        "payments",
        ["id"],
        unique=False,
        postgresql_where=sa.text("status = 'pending' AND provider_payment_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_payments_pending_at_provider", table_name="payments")
    op.drop_column("payments", "provider_checked_at")
