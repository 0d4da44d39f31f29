"""billing engine: events and webhook endpoints, invoice numbering and cycles, dunning settings, test clocks

Revision ID: tenant_0005
Revises: tenant_0004
Create Date: 2026-11-27 08:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "tenant_0005"
down_revision: str | None = "tenant_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
_REASONS = "('subscription_create', 'subscription_cycle', 'subscription_update', 'manual')"


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("object_type", sa.Text(), nullable=False),
        sa.Column("object_id", sa.BigInteger(), nullable=False),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", TS, server_default=sa.text("now()"), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.CheckConstraint("type ~ '^[a-z_]+(\\.[a-z_]+)+$'", name=op.f("ck_events_type")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index(op.f("ix_events_object_type_object_id_id"), "events", ["object_type", "object_id", "id"])
    op.create_table(
        "webhook_endpoints",
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column(
            "enabled_events", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'::text[]"), nullable=False
        ),
        sa.Column("secret_ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("secret_key_id", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default="enabled", nullable=False),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("created_at", TS, server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", TS, server_default=sa.text("now()"), nullable=False),
        sa.Column(
            "metadata", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False
        ),
        sa.CheckConstraint("status IN ('enabled', 'disabled')", name=op.f("ck_webhook_endpoints_status")),
        sa.CheckConstraint("consecutive_failures >= 0", name=op.f("ck_webhook_endpoints_consecutive_failures")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("endpoint_id", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", TS, server_default=sa.text("now()"), nullable=False),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", TS, server_default=sa.text("now()"), nullable=False),
        sa.Column("delivered_at", TS, nullable=True),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name=op.f("ck_webhook_deliveries_status")),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoints.id"],
            name=op.f("fk_webhook_deliveries_endpoint_id_webhook_endpoints"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name=op.f("fk_webhook_deliveries_event_id_events")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
    )
    op.create_index(
        "ix_webhook_deliveries_due",
        "webhook_deliveries",
        ["next_attempt_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        op.f("ix_webhook_deliveries_endpoint_id_event_id"), "webhook_deliveries", ["endpoint_id", "event_id"]
    )
    op.create_table(
        "invoice_counters",
        sa.Column("id", sa.SmallInteger(), server_default="1", nullable=False),
        sa.Column("last_number", sa.BigInteger(), server_default="0", nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_invoice_counters_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoice_counters")),
    )
    op.create_table(
        "billing_settings",
        sa.Column("id", sa.SmallInteger(), server_default="1", nullable=False),
        sa.Column(
            "dunning_retry_days",
            postgresql.ARRAY(sa.Integer()),
            server_default=sa.text("'{3,5,7}'::integer[]"),
            nullable=False,
        ),
        sa.Column("dunning_final_action", sa.Text(), server_default="cancel", nullable=False),
        sa.Column("updated_at", TS, server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_billing_settings_single_row")),
        sa.CheckConstraint(
            "dunning_final_action IN ('cancel', 'mark_unpaid')", name=op.f("ck_billing_settings_dunning_final_action")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_settings")),
    )
    op.create_table(
        "test_clocks",
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("frozen_time", TS, nullable=False),
        sa.Column("status", sa.Text(), server_default="ready", nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("created_at", TS, server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", TS, server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("status IN ('ready', 'advancing')", name=op.f("ck_test_clocks_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_test_clocks")),
    )
    op.create_table(
        "invoice_items",
        sa.Column("customer_id", sa.BigInteger(), nullable=False),
        sa.Column("subscription_id", sa.BigInteger(), nullable=True),
        sa.Column("invoice_id", sa.BigInteger(), nullable=True),
        sa.Column("plan_id", sa.BigInteger(), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("unit_amount", sa.Numeric(38, 12), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("period_start", TS, nullable=True),
        sa.Column("period_end", TS, nullable=True),
        sa.Column("proration", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("created_at", TS, server_default=sa.text("now()"), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name=op.f("ck_invoice_items_currency")),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name=op.f("fk_invoice_items_customer_id_customers")),
        sa.ForeignKeyConstraint(
            ["subscription_id"], ["subscriptions.id"], name=op.f("fk_invoice_items_subscription_id_subscriptions")
        ),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"], name=op.f("fk_invoice_items_invoice_id_invoices")),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"], name=op.f("fk_invoice_items_plan_id_plans")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoice_items")),
    )
    op.create_index(op.f("ix_invoice_items_customer_id"), "invoice_items", ["customer_id"])
    op.create_index(
        "ix_invoice_items_pending", "invoice_items", ["subscription_id"], postgresql_where=sa.text("invoice_id IS NULL")
    )
    op.add_column("customers", sa.Column("test_clock_id", sa.BigInteger(), nullable=True))
    op.create_foreign_key(
        op.f("fk_customers_test_clock_id_test_clocks"), "customers", "test_clocks", ["test_clock_id"], ["id"]
    )
    op.create_index(op.f("ix_customers_test_clock_id"), "customers", ["test_clock_id"])
    op.add_column("subscriptions", sa.Column("payment_method_id", sa.BigInteger(), nullable=True))
    op.add_column("subscriptions", sa.Column("paused_at", TS, nullable=True))
    op.add_column("subscriptions", sa.Column("resume_at", TS, nullable=True))
    op.add_column("subscriptions", sa.Column("ended_at", TS, nullable=True))
    op.add_column("subscriptions", sa.Column("pending_plan_id", sa.BigInteger(), nullable=True))
    op.add_column("subscriptions", sa.Column("pending_quantity", sa.Integer(), nullable=True))
    op.create_foreign_key(
        op.f("fk_subscriptions_payment_method_id_payment_methods"),
        "subscriptions",
        "payment_methods",
        ["payment_method_id"],
        ["id"],
    )
    op.create_foreign_key(
        op.f("fk_subscriptions_pending_plan_id_plans"), "subscriptions", "plans", ["pending_plan_id"], ["id"]
    )
    op.add_column("invoices", sa.Column("billing_reason", sa.Text(), server_default="manual", nullable=False))
    op.add_column("invoices", sa.Column("attempt_count", sa.Integer(), server_default="0", nullable=False))
    op.add_column("invoices", sa.Column("next_payment_attempt_at", TS, nullable=True))
    op.create_check_constraint(op.f("ck_invoices_billing_reason"), "invoices", f"billing_reason IN {_REASONS}")
    op.create_index(
        "uq_invoices_subscription_cycle",
        "invoices",
        ["subscription_id", "period_start"],
        unique=True,
        postgresql_where=sa.text("billing_reason = 'subscription_cycle'"),
    )
    op.create_index(
        "ix_invoices_payment_due",
        "invoices",
        ["next_payment_attempt_at"],
        postgresql_where=sa.text("status = 'open'"),
    )


def downgrade() -> None:
    op.drop_index("ix_invoices_payment_due", table_name="invoices", postgresql_where=sa.text("status = 'open'"))
    op.drop_index(
        "uq_invoices_subscription_cycle",
        table_name="invoices",
        postgresql_where=sa.text("billing_reason = 'subscription_cycle'"),
    )
    op.drop_constraint(op.f("ck_invoices_billing_reason"), "invoices", type_="check")
    for column in ("next_payment_attempt_at", "attempt_count", "billing_reason"):
        op.drop_column("invoices", column)
    op.drop_constraint(op.f("fk_subscriptions_pending_plan_id_plans"), "subscriptions", type_="foreignkey")
    op.drop_constraint(op.f("fk_subscriptions_payment_method_id_payment_methods"), "subscriptions", type_="foreignkey")
    for column in ("pending_quantity", "pending_plan_id", "ended_at", "resume_at", "paused_at", "payment_method_id"):
        op.drop_column("subscriptions", column)
    op.drop_index(op.f("ix_customers_test_clock_id"), table_name="customers")
    op.drop_constraint(op.f("fk_customers_test_clock_id_test_clocks"), "customers", type_="foreignkey")
    op.drop_column("customers", "test_clock_id")
    op.drop_table("invoice_items")
    op.drop_table("test_clocks")
    op.drop_table("billing_settings")
    op.drop_table("invoice_counters")
    op.drop_index(op.f("ix_webhook_deliveries_endpoint_id_event_id"), table_name="webhook_deliveries")
    op.drop_index(
        "ix_webhook_deliveries_due", table_name="webhook_deliveries", postgresql_where=sa.text("status = 'pending'")
    )
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_endpoints")
    op.drop_index(op.f("ix_events_object_type_object_id_id"), table_name="events")
    op.drop_table("events")
