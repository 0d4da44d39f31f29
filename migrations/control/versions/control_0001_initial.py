"""control schema: tenants, API keys, migration runs

Revision ID: control_0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "control_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "control"
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), nullable=False),
        sa.Column("slug", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("schema_name", sa.Text, nullable=False),
        sa.Column("status", sa.Text, server_default="active", nullable=False),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", TS, server_default=sa.func.now(), nullable=False),
        sa.Column("schema_revision", sa.Text, nullable=True),
        sa.Column("migration_status", sa.Text, nullable=True),
        sa.Column("migration_error", sa.Text, nullable=True),
        sa.Column("migrated_at", TS, nullable=True),
        sa.CheckConstraint("status IN ('active', 'suspended')", name="ck_tenants_status"),
        sa.CheckConstraint(
            "migration_status IS NULL OR migration_status IN ('ok', 'failed')",
            name="ck_tenants_migration_status",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_tenants"),
        sa.UniqueConstraint("slug", name="uq_tenants_slug"),
        sa.UniqueConstraint("schema_name", name="uq_tenants_schema_name"),
        schema=SCHEMA,
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), nullable=False),
        sa.Column("tenant_id", sa.BigInteger, nullable=False),
        sa.Column("prefix", sa.Text, nullable=False),
        sa.Column("digest", sa.Text, nullable=False),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], [f"{SCHEMA}.tenants.id"], name="fk_api_keys_tenant_id_tenants", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("digest", name="uq_api_keys_digest"),
        schema=SCHEMA,
    )
    op.create_index("ix_api_keys_tenant_id", "api_keys", ["tenant_id"], schema=SCHEMA)
    op.create_table(
        "migration_runs",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), nullable=False),
        sa.Column("target_revision", sa.Text, nullable=False),
        sa.Column("started_at", TS, server_default=sa.func.now(), nullable=False),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("total", sa.Integer, server_default="0", nullable=False),
        sa.Column("upgraded", sa.Integer, server_default="0", nullable=False),
        sa.Column("failed", sa.Integer, server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_migration_runs"),
        schema=SCHEMA,
    )
    op.create_table(
        "tenant_migrations",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), nullable=False),
        sa.Column("run_id", sa.BigInteger, nullable=False),
        sa.Column("tenant_id", sa.BigInteger, nullable=False),
        sa.Column("from_revision", sa.Text, nullable=True),
        sa.Column("to_revision", sa.Text, nullable=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("finished_at", TS, server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("status IN ('ok', 'failed')", name="ck_tenant_migrations_status"),
        sa.ForeignKeyConstraint(
            ["run_id"],
            [f"{SCHEMA}.migration_runs.id"],
            name="fk_tenant_migrations_run_id_migration_runs",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            [f"{SCHEMA}.tenants.id"],
            name="fk_tenant_migrations_tenant_id_tenants",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_tenant_migrations"),
        schema=SCHEMA,
    )
    op.create_index("ix_tenant_migrations_run_id", "tenant_migrations", ["run_id"], schema=SCHEMA)
    op.create_index(
        "ix_tenant_migrations_tenant_id_finished_at",
        "tenant_migrations",
        ["tenant_id", "finished_at"],
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("tenant_migrations", schema=SCHEMA)
    op.drop_table("migration_runs", schema=SCHEMA)
    op.drop_table("api_keys", schema=SCHEMA)
    op.drop_table("tenants", schema=SCHEMA)
