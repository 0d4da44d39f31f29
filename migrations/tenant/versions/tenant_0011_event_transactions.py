"""event transactions: the id of the transaction that wrote each event, so the events list never
skips an event whose transaction committed late

Revision ID: tenant_0011
Revises: tenant_0010
Create Date: 2026-11-28 14:30:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "tenant_0011"
down_revision: str | None = "tenant_0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A constant default adds the column without rewriting the table: events written before get
    # 0, so they list first, in id order, as they did. New events take their transaction's id.
    # SQLAlchemy has no xid8 type: plain DDL.
    op.execute("ALTER TABLE events ADD COLUMN tx xid8 NOT NULL DEFAULT '0'")
    op.execute("ALTER TABLE events ALTER COLUMN tx SET DEFAULT pg_current_xact_id()")
    op.create_index(op.f("ix_events_tx_id"), "events", ["tx", "id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_events_tx_id"), table_name="events")
    op.drop_column("events", "tx")
