"""provider sync: outbox, inbound provider events, provider plans, sync state columns

Revision ID: tenant_0003
Revises: tenant_0002
Create Date: 2026-11-27 05:28:27.542391
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "tenant_0003"
down_revision: str | None = "tenant_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("object_id", sa.BigInteger(), nullable=False),
        sa.Column("provider_account_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind ~ '^[a-z_]+\\.[a-z_]+$'", name=op.f("ck_outbox_kind")),
        sa.CheckConstraint("status IN ('pending', 'done', 'failed')", name=op.f("ck_outbox_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    op.create_index(
        "ix_outbox_due", "outbox", ["next_attempt_at"], unique=False, postgresql_where=sa.text("status = 'pending'")
    )
    op.create_index(
        op.f("ix_outbox_object_id_provider_account_id"), "outbox", ["object_id", "provider_account_id"], unique=False
    )
    op.create_table(
        "provider_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("provider_account_id", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("provider_object_id", sa.Text(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("raw_body", sa.LargeBinary(), nullable=False),
        sa.Column("event", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.Text(), server_default="received", nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('received', 'applied', 'ignored')", name=op.f("ck_provider_events_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_events")),
        sa.UniqueConstraint(
            "provider_account_id", "event_id", name=op.f("uq_provider_events_provider_account_id_event_id")
        ),
    )
    op.create_index(
        "ix_provider_events_received",
        "provider_events",
        ["received_at"],
        unique=False,
        postgresql_where=sa.text("status = 'received'"),
    )
    op.create_table(
        "provider_plans",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("plan_id", sa.BigInteger(), nullable=False),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("provider_account_id", sa.BigInteger(), nullable=False),
        sa.Column("provider_product_id", sa.Text(), nullable=False),
        sa.Column("provider_price_id", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"], name=op.f("fk_provider_plans_plan_id_plans")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_plans")),
        sa.UniqueConstraint(
            "plan_id", "provider_account_id", name=op.f("uq_provider_plans_plan_id_provider_account_id")
        ),
    )
    op.add_column("customers", sa.Column("sync_status", sa.Text(), server_default="none", nullable=False))
    op.add_column("customers", sa.Column("last_sync_error", sa.Text(), nullable=True))
    op.add_column("customers", sa.Column("synced_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("customers", sa.Column("provider_event_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "customers",
        sa.Column(
            "provider_ids",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
    )
    # provider_customers had no writer before this revision; copy whatever a script put there.
    op.execute(
        "UPDATE customers SET provider_ids = ids.list FROM ("
        " SELECT customer_id, jsonb_agg(jsonb_build_object('provider', provider, 'provider_account_id',"
        " provider_account_id, 'provider_customer_id', provider_customer_id) ORDER BY provider_account_id) AS list"
        " FROM provider_customers GROUP BY customer_id) AS ids WHERE ids.customer_id = customers.id"
    )
    op.add_column("subscriptions", sa.Column("sync_status", sa.Text(), server_default="none", nullable=False))
    op.add_column("subscriptions", sa.Column("last_sync_error", sa.Text(), nullable=True))
    op.add_column("subscriptions", sa.Column("synced_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("subscriptions", sa.Column("provider_event_at", sa.DateTime(timezone=True), nullable=True))
    for table in ("customers", "subscriptions"):
        # Expand-only: a default fills existing rows ('none': nothing mirrored yet), no rewrite on PG 11+.
        op.create_check_constraint(
            op.f(f"ck_{table}_sync_status"), table, "sync_status IN ('none', 'pending', 'synced', 'failed')"
        )
    op.create_index(
        op.f("ix_subscriptions_provider_account_id_provider_subscription_id"),
        "subscriptions",
        ["provider_account_id", "provider_subscription_id"],
        unique=False,
    )


def downgrade() -> None:
    for table in ("customers", "subscriptions"):
        op.drop_constraint(op.f(f"ck_{table}_sync_status"), table, type_="check")
    op.drop_index(op.f("ix_subscriptions_provider_account_id_provider_subscription_id"), table_name="subscriptions")
    op.drop_column("subscriptions", "provider_event_at")
    op.drop_column("subscriptions", "synced_at")
    op.drop_column("subscriptions", "last_sync_error")
    op.drop_column("subscriptions", "sync_status")
    op.drop_column("customers", "provider_ids")
    op.drop_column("customers", "provider_event_at")
    op.drop_column("customers", "synced_at")
    op.drop_column("customers", "last_sync_error")
    op.drop_column("customers", "sync_status")
    op.drop_table("provider_plans")
    op.drop_index(
        "ix_provider_events_received", table_name="provider_events", postgresql_where=sa.text("status = 'received'")
    )
    op.drop_table("provider_events")
    op.drop_index(op.f("ix_outbox_object_id_provider_account_id"), table_name="outbox")
    op.drop_index("ix_outbox_due", table_name="outbox", postgresql_where=sa.text("status = 'pending'"))
    op.drop_table("outbox")
