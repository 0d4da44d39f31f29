"""The asyncpg connection under a session's transaction, for the billing run's own statements.

A run sends a handful of wide statements per tenant; through SQLAlchemy each cost about a
millisecond of Python (compiling, parameter and result processing) on top of the driver's own
work, as much as PostgreSQL spent on it (docs/performance.md, "Billing runs"). On the driver they
run in the same transaction and the same tenant scope.

Unlike the statements sent through SQLAlchemy (ADR 0001), asyncpg keeps these prepared, and one
tenant's prepared statement serves the next on the same connection: PostgreSQL analyzes it again
for each tenant's search_path (the right tenant's tables, always), but refuses one whose result
columns would change type, which a tenant migrated ahead of another can do. So every result
column of a statement sent here is cast to the type the code reads, and every parameter is too;
tests/platform/billing/test_run_divergent_schemas.py bills tenants whose columns differ on one
connection.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession


async def driver_of(session: AsyncSession) -> Any:
    """The session's asyncpg connection; its transaction must have begun (a statement was sent
    through the session), or the statements would each commit on their own."""
    connection = await session.connection()
    pooled = await connection.get_raw_connection()
    driver = pooled.driver_connection
    if driver is None or not driver.is_in_transaction():
        raise RuntimeError("the session's transaction has not begun: send a statement through the session first")
    return driver
