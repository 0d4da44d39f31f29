"""customer credit: credits left pending when a subscription ends, found by customer

Revision ID: tenant_0007
Revises: tenant_0006
Create Date: 2026-11-28 04:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "tenant_0007"
down_revision: str | None = "tenant_0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Expand only: an index; the previous app version leaves no item without its subscription.
    op.create_index(
        "ix_invoice_items_customer_credit",
        "invoice_items",
        ["customer_id"],
        unique=False,
        postgresql_where=sa.text("subscription_id IS NULL AND invoice_id IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_invoice_items_customer_credit", table_name="invoice_items")
