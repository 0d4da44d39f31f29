"""billed basis: the plan and quantity a subscription's current period was billed at, when a
change without proration made them differ, so that a later proration credits what was paid; and
when the plan or quantity last changed, the earliest a proration_date may be; and the billing
cycle's anchor, whose day of the month a period that ended clamped (Jan 31, Feb 28) returns to

Revision ID: tenant_0012
Revises: tenant_0011
Create Date: 2026-11-28 17:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "tenant_0012"
down_revision: str | None = "tenant_0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable columns without a default: no table rewrite. NULL for every existing subscription:
    # its period is taken as billed at its plan and quantity, as before.
    op.add_column("subscriptions", sa.Column("billed_plan_id", sa.BigInteger(), nullable=True))
    op.add_column("subscriptions", sa.Column("billed_quantity", sa.Integer(), nullable=True))
    op.add_column("subscriptions", sa.Column("billed_period_start", sa.DateTime(timezone=True), nullable=True))
    op.add_column("subscriptions", sa.Column("plan_changed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("subscriptions", sa.Column("billing_cycle_anchor", sa.DateTime(timezone=True), nullable=True))
    op.create_foreign_key(
        op.f("fk_subscriptions_billed_plan_id_plans"), "subscriptions", "plans", ["billed_plan_id"], ["id"]
    )


def downgrade() -> None:
    op.drop_constraint(op.f("fk_subscriptions_billed_plan_id_plans"), "subscriptions", type_="foreignkey")
    op.drop_column("subscriptions", "billing_cycle_anchor")
    op.drop_column("subscriptions", "plan_changed_at")
    op.drop_column("subscriptions", "billed_period_start")
    op.drop_column("subscriptions", "billed_quantity")
    op.drop_column("subscriptions", "billed_plan_id")
