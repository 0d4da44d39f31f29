"""metered since: when a change made at once moved a subscription from a plan that does not meter
to a metered one, so that its period's usage counts from then (the time before was the old plan's,
paid in advance)

Revision ID: tenant_0014
Revises: tenant_0013
Create Date: 2026-11-29 03:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "tenant_0014"
down_revision: str | None = "tenant_0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, no default: no table rewrite. NULL for every existing subscription: its period's
    # usage counts from the period's start, as before.
    op.add_column("subscriptions", sa.Column("metered_since", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("subscriptions", "metered_since")
