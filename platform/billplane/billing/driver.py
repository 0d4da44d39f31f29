"""The asyncpg connection under a session's transaction, for the billing run's own statements.

A run sends a handful of wide statements per tenant; through SQLAlchemy each cost about a
millisecond of Python (compiling, parameter and result processing) on top of the driver's own
work, as much as PostgreSQL spent on it (docs/performance.md, "Billing runs"). On the driver they
run in the same transaction and the same tenant scope, unnamed and uncached like every statement
billplane sends (ADR 0001).
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
