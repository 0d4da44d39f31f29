"""payment reconciliation: why a payment waits for the tenant, and the index its job scans

Revision ID: tenant_0006
Revises: tenant_0005
Create Date: 2026-11-27 14:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "tenant_0006"
down_revision: str | None = "tenant_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Expand only: a nullable column and an index; the previous app version ignores both.
    op.add_column("payments", sa.Column("action_required", sa.Text(), nullable=True))
    op.create_index(
        "ix_payments_unconfirmed",
        "payments",
        ["id"],
        unique=False,
        postgresql_where=sa.text("status = 'pending' AND provider_payment_id IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_payments_unconfirmed", table_name="payments")
    op.drop_column("payments", "action_required")
