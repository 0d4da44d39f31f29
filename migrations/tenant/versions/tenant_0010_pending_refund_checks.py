"""pending refund checks: why a refund waits for the tenant or failed, when its provider was last
asked, and one refund per provider refund id

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
    # Expand only: nullable columns and partial indexes; the previous app version ignores them.
    op.add_column("refunds", sa.Column("action_required", sa.Text(), nullable=True))
    op.add_column("refunds", sa.Column("provider_checked_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("refunds", sa.Column("failure_code", sa.Text(), nullable=True))
    op.add_column("refunds", sa.Column("failure_message", sa.Text(), nullable=True))
    op.create_index(
        "ix_refunds_pending", "refunds", ["id"], unique=False, postgresql_where=sa.text("status = 'pending'")
    )
    # Two rows for one provider refund would count its money twice. A schema that already holds
    # such a pair fails here, loudly, rather than keep counting it: check those refunds by hand.
    op.create_index(
        "uq_refunds_provider_refund_id",
        "refunds",
        ["provider_refund_id"],
        unique=True,
        postgresql_where=sa.text("provider_refund_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_refunds_provider_refund_id", table_name="refunds")
    op.drop_index("ix_refunds_pending", table_name="refunds")
    op.drop_column("refunds", "failure_message")
    op.drop_column("refunds", "failure_code")
    op.drop_column("refunds", "provider_checked_at")
    op.drop_column("refunds", "action_required")
