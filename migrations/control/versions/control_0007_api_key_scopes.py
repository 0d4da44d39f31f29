"""API keys carry scopes

Revision ID: control_0007
Revises: control_0006
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision: str = "control_0007"
down_revision: str | None = "control_0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "control"


def upgrade() -> None:
    # A constant default: PostgreSQL adds the column without rewriting the table, and every
    # existing key keeps doing everything ("*"), as it did before scopes existed.
    op.add_column(
        "api_keys",
        sa.Column("scopes", ARRAY(sa.Text), nullable=False, server_default=sa.text("'{*}'::text[]")),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_column("api_keys", "scopes", schema=SCHEMA)
