"""provider event reapplied: when an ignored provider event was set back to be applied again, so
that its wait for what it needs counts from then, while ``received_at`` keeps when it arrived

Revision ID: tenant_0015
Revises: tenant_0014
Create Date: 2026-11-29 03:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "tenant_0015"
down_revision: str | None = "tenant_0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, no default: no table rewrite. NULL: never reapplied, its wait counts from received_at.
    op.add_column("provider_events", sa.Column("reapplied_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("provider_events", "reapplied_at")
