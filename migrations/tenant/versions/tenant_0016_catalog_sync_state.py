"""catalog sync state: products and plans show how the mirroring of their edits to providers stands
(``product.update`` and ``plan.update`` outbox rows), as customers and subscriptions do

Revision ID: tenant_0016
Revises: tenant_0015
Create Date: 2026-11-29 06:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "tenant_0016"
down_revision: str | None = "tenant_0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("products", "plans")


def upgrade() -> None:
    for table in _TABLES:
        # A constant default: PostgreSQL stores it in the catalog, no table rewrite.
        op.add_column(table, sa.Column("sync_status", sa.Text(), server_default="none", nullable=False))
        op.add_column(table, sa.Column("last_sync_error", sa.Text(), nullable=True))
        op.add_column(table, sa.Column("synced_at", sa.DateTime(timezone=True), nullable=True))
        op.create_check_constraint(
            op.f(f"ck_{table}_sync_status"), table, "sync_status IN ('none', 'pending', 'synced', 'failed')"
        )


def downgrade() -> None:
    for table in _TABLES:
        op.drop_constraint(op.f(f"ck_{table}_sync_status"), table, type_="check")
        op.drop_column(table, "synced_at")
        op.drop_column(table, "last_sync_error")
        op.drop_column(table, "sync_status")
