"""pending refund checks: why a refund waits for the tenant, and when its provider was last asked

Revision ID: tenant_0010
Revises: tenant_0009
Create Date: 2026-11-28 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "tenant_0010"
down_revision: str | None = "tenant_0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Expand only: nullable columns and a partial index; the previous app version ignores them.
    op.add_column("refunds", sa.Column("action_required", sa.Text(), nullable=True))
    op.add_column("refunds", sa.Column("provider_checked_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_refunds_pending", "refunds", ["id"], unique=False, postgresql_where=sa.text("status = 'pending'")
    )


def downgrade() -> None:
    op.drop_index("ix_refunds_pending", table_name="refunds")
    op.drop_column("refunds", "provider_checked_at")
    op.drop_column("refunds", "action_required")
