"""tenants carry the operator's request-rate override

Revision ID: control_0006
Revises: control_0005
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "control_0006"
down_revision: str | None = "control_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "control"


def upgrade() -> None:
    # Nullable with no default: adding them rewrites nothing, and every existing tenant keeps
    # the processes' default limit until the operator sets one.
    op.add_column("tenants", sa.Column("rate_limit_per_second", sa.Integer, nullable=True), schema=SCHEMA)
    op.add_column("tenants", sa.Column("rate_limit_burst", sa.Integer, nullable=True), schema=SCHEMA)
    op.create_check_constraint(
        op.f("ck_tenants_rate_limit"),
        "tenants",
        "(rate_limit_per_second IS NULL) = (rate_limit_burst IS NULL)"
        " AND (rate_limit_per_second IS NULL OR rate_limit_per_second >= 0)"
        " AND (rate_limit_burst IS NULL OR rate_limit_burst >= 1)",
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_tenants_rate_limit"), "tenants", type_="check", schema=SCHEMA)
    op.drop_column("tenants", "rate_limit_burst", schema=SCHEMA)
    op.drop_column("tenants", "rate_limit_per_second", schema=SCHEMA)
