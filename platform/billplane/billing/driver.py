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


async def begin_on_driver(session: AsyncSession) -> Any:
    """Begin the session's transaction, with its tenant scope, and return its asyncpg connection:
    for a transaction whose first statement goes to the driver (the billing run's lock).

    SQLAlchemy's asyncpg adapter sends BEGIN (and with it the scope, ``billplane_tenants``) only
    before the first statement sent through it, and commits only a transaction it began; so it is
    asked to begin this one. ``_transaction`` and ``_start_transaction`` are private to
    ``sqlalchemy.dialects.postgresql.asyncpg`` (2.1, locked in uv.lock):
    tests/platform/billing/test_driver.py fails if they change."""
    connection = await session.connection()  # the session's transaction, and its scope mark
    pooled = await connection.get_raw_connection()
    adapter: Any = pooled.dbapi_connection
    async with adapter._execute_mutex:  # noqa: SLF001 - see above
        if adapter._transaction is None:  # noqa: SLF001
            await adapter._start_transaction()  # noqa: SLF001
    return await driver_of(session)


async def driver_of(session: AsyncSession) -> Any:
    """The session's asyncpg connection; its transaction must have begun (a statement was sent
    through the session, or ``begin_on_driver`` began it), or the statements would each commit on
    their own."""
    connection = await session.connection()
    pooled = await connection.get_raw_connection()
    driver = pooled.driver_connection
    if driver is None or not driver.is_in_transaction():
        raise RuntimeError("the session's transaction has not begun: send a statement through the session first")
    return driver
