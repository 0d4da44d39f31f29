"""provider accounts keep the webhook secret a change replaced, for a day

Revision ID: control_0005
Revises: control_0004
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "control_0005"
down_revision: str | None = "control_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "control"


def upgrade() -> None:
    # Sealed like webhook_secret_ciphertext (same key, its own associated-data purpose).
    op.add_column(
        "provider_accounts",
        sa.Column("previous_webhook_secret_ciphertext", sa.LargeBinary, nullable=True),
        schema=SCHEMA,
    )
    op.add_column(
        "provider_accounts",
        sa.Column("previous_webhook_secret_until", sa.DateTime(timezone=True), nullable=True),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_column("provider_accounts", "previous_webhook_secret_until", schema=SCHEMA)
    op.drop_column("provider_accounts", "previous_webhook_secret_ciphertext", schema=SCHEMA)
