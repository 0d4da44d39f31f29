"""outbox calls: charge calls started per row, so a worker that died mid-call leaves a trace

Revision ID: tenant_0008
Revises: tenant_0007
Create Date: 2026-11-28 05:15:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "tenant_0008"
down_revision: str | None = "tenant_0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Expand only: a column with a constant default (no table rewrite); the previous app version
    # never names it.
    op.add_column("outbox", sa.Column("calls", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    op.drop_column("outbox", "calls")
