"""Alembic environment for the tenant track, for one schema at a time.

`billplane tenants migrate` does not go through this file: it drives the same revisions for every
tenant on one connection (billplane_tenants.migrations). This file serves developers:
    alembic -n tenant -x schema=tenant_demo upgrade head
    alembic -n tenant -x schema=tenant_scratch revision --autogenerate -m "add x"
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy import Connection

from billplane.db.tenant_models import tenant_metadata
from billplane_tenants import Database
from billplane_tenants.database import scope_connection

config = context.config


def run_on(connection: Connection, schema: str) -> None:
    scope_connection(connection, schema)
    context.configure(
        connection=connection,
        target_metadata=tenant_metadata,
        version_table_schema=schema,
        compare_type=True,
        # The version table is alembic's own, not a model: never propose to drop it.
        include_object=lambda _obj, name, type_, _reflected, _compare: (
            not (type_ == "table" and name == "alembic_version")
        ),
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_from_environment(schema: str) -> None:
    database = Database(os.environ["BILLPLANE_DATABASE_URL"], pool_size=1, max_overflow=0)
    try:
        async with database.engine.connect() as connection:
            await connection.run_sync(run_on, schema)
            await connection.commit()
    finally:
        await database.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) mode is not supported for the tenant track")
target_schema = context.get_x_argument(as_dictionary=True).get("schema")
if not target_schema:
    raise SystemExit("name the tenant schema: alembic -n tenant -x schema=tenant_<slug> ...")
asyncio.run(run_from_environment(target_schema))
