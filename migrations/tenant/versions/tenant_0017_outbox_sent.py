"""outbox sent: what a row's first attempt sent, per step, so that a retry sends the same under the
same idempotency key (a provider replays a key's answer only for the parameters it was first used
with; Stripe refuses others)

Revision ID: tenant_0017
Revises: tenant_0016
Create Date: 2026-11-29 07:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "tenant_0017"
down_revision: str | None = "tenant_0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, no default: PostgreSQL adds it without rewriting the table.
    op.add_column("outbox", sa.Column("sent", postgresql.JSONB(astext_type=sa.Text()), nullable=True))


def downgrade() -> None:
    op.drop_column("outbox", "sent")
