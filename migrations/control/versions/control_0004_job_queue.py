"""job queue: procrastinate's tables and functions in their own schema

Revision ID: control_0004
Revises: control_0002
Create Date: 2026-11-27 05:40:00

The owner re-chains this after control_0003 (provider accounts) when both tracks land.
procrastinate's SQL names its objects without a schema; it runs here with search_path set to
``billplane_jobs`` for this transaction only, and billplane's job-queue connections use the same
search_path (billplane.sync.queue). The SQL file is a verbatim copy of procrastinate 3.10.0's
schema, so this revision creates the same objects whatever version is installed later.
"""

from collections.abc import Sequence
from pathlib import Path

from alembic import op
from sqlalchemy.util import await_only

revision: str = "control_0004"
down_revision: str | None = "control_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JOBS_SCHEMA = "billplane_jobs"
SCHEMA_SQL = Path(__file__).resolve().parent.parent / "sql" / "procrastinate-3.10.0.sql"


def _run_script(sql: str) -> None:
    # Several statements and plpgsql bodies: one simple-protocol query, in alembic's transaction.
    driver = op.get_bind().connection.driver_connection
    if driver is None:
        raise RuntimeError("the migration connection was closed")
    await_only(driver.execute(sql))


def upgrade() -> None:
    _run_script(
        f"CREATE SCHEMA {JOBS_SCHEMA};\n"
        f"SELECT set_config('search_path', '{JOBS_SCHEMA}', true);\n"
        + SCHEMA_SQL.read_text(encoding="utf-8")
        + "\nSET LOCAL search_path TO DEFAULT;\n"
    )


def downgrade() -> None:
    _run_script(f"DROP SCHEMA {JOBS_SCHEMA} CASCADE;")
