"""provider-billed state: invoices a provider issued, subscriptions' next action and expiry

Revision ID: tenant_0004
Revises: tenant_0003
Create Date: 2026-11-27 08:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "tenant_0004"
down_revision: str | None = "tenant_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_STATUSES = "('trialing', 'active', 'past_due', 'paused', 'canceled', 'unpaid', 'incomplete')"
_NEW_STATUSES = "('trialing', 'active', 'past_due', 'paused', 'canceled', 'unpaid', 'incomplete', 'incomplete_expired')"


def upgrade() -> None:
    op.add_column("subscriptions", sa.Column("next_action_type", sa.Text(), nullable=True))
    op.add_column("subscriptions", sa.Column("next_action_url", sa.Text(), nullable=True))
    # Widening the allowed statuses: every existing row already satisfies the new check.
    op.drop_constraint(op.f("ck_subscriptions_status"), "subscriptions", type_="check")
    op.create_check_constraint(op.f("ck_subscriptions_status"), "subscriptions", f"status IN {_NEW_STATUSES}")
    op.add_column("invoices", sa.Column("provider", sa.Text(), nullable=True))
    op.add_column("invoices", sa.Column("provider_account_id", sa.BigInteger(), nullable=True))
    op.add_column("invoices", sa.Column("provider_invoice_id", sa.Text(), nullable=True))
    op.add_column("invoices", sa.Column("provider_event_at", sa.DateTime(timezone=True), nullable=True))
    op.create_unique_constraint(
        op.f("uq_invoices_provider_account_id_provider_invoice_id"),
        "invoices",
        ["provider_account_id", "provider_invoice_id"],
    )


def downgrade() -> None:
    op.drop_constraint(op.f("uq_invoices_provider_account_id_provider_invoice_id"), "invoices", type_="unique")
    op.drop_column("invoices", "provider_event_at")
    op.drop_column("invoices", "provider_invoice_id")
    op.drop_column("invoices", "provider_account_id")
    op.drop_column("invoices", "provider")
    op.execute("UPDATE subscriptions SET status = 'canceled' WHERE status = 'incomplete_expired'")
    op.drop_constraint(op.f("ck_subscriptions_status"), "subscriptions", type_="check")
    op.create_check_constraint(op.f("ck_subscriptions_status"), "subscriptions", f"status IN {_OLD_STATUSES}")
    op.drop_column("subscriptions", "next_action_url")
    op.drop_column("subscriptions", "next_action_type")
