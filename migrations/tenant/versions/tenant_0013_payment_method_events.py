"""payment method events: the time of the newest provider event applied to a payment method (or
of billplane's own attach or detach at the provider), so that an older one, delivered late, never
undoes a newer state

Revision ID: tenant_0013
Revises: tenant_0012
Create Date: 2026-11-29 02:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "tenant_0013"
down_revision: str | None = "tenant_0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, no default: no table rewrite. NULL: no event applied yet, any event is newer.
    op.add_column("payment_methods", sa.Column("provider_event_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("payment_methods", "provider_event_at")
