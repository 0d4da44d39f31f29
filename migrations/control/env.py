"""Alembic environment for the control track (the shared `control` schema)."""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy import Connection, text

# Imported for their side effect: each registers its control tables on ControlBase.metadata.
import billplane.idempotency.models
import billplane.provider_accounts.models  # noqa: F401
from billplane_tenants import CONTROL_SCHEMA, ControlBase, Database

config = context.config


def run_on(connection: Connection) -> None:
    # The version table lives in the control schema, which must exist before alembic looks for it.
    connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {CONTROL_SCHEMA}"))
    context.configure(
        connection=connection,
        target_metadata=ControlBase.metadata,
        version_table_schema=CONTROL_SCHEMA,
        include_schemas=True,
        include_name=lambda name, type_, _parent: type_ != "schema" or name == CONTROL_SCHEMA,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_from_environment() -> None:
    database = Database(os.environ["BILLPLANE_DATABASE_URL"], pool_size=1, max_overflow=0)
    try:
        async with database.engine.connect() as connection:
            await connection.run_sync(run_on)
            await connection.commit()
    finally:
        await database.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) mode is not supported for the control track")
connection = config.attributes.get("connection")
if connection is not None:
    run_on(connection)
else:
    asyncio.run(run_from_environment())
