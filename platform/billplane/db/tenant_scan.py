"""Finding work in every active tenant in few queries: what the periodic jobs share.

One read per batch of tenant schemas (``UNION ALL`` of one small SELECT per schema) instead of
one round trip per tenant. Schemas not migrated far enough to have the table asked about are
left out, and the read's transaction ends at once: it holds a lock on every table it touched
(``max_locks_per_transaction``).

A batch's read fails whole when one schema in it cannot answer (a table changed by hand, a
migration that stopped halfway). So a refused read is asked again schema by schema, and only
the schemas that still fail are left out: one broken tenant must not hide fifty others' work from
the billing run, dunning or the sweeps.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from billplane_tenants import Database, Tenant

# Schemas per read. The planner locks every table a read names and every index of those tables
# until the read's transaction ends: the dunning read takes 19 locks per schema (invoices,
# customers, payments and their indexes). PostgreSQL shares max_locks_per_transaction x
# max_connections slots among all sessions, 6,400 by default, so 500 schemas a read (9,500 locks)
# ran out of shared memory and failed the other sessions' queries too. 50 keeps each read under
# 1,000 (tests/platform/test_scan_locks.py measures every periodic read against this).
BATCH = 50
LOCK_BUDGET = 1_000
# SQLSTATE classes that say the connection or the server failed, not a schema: connection
# exception, operator intervention, system error. Asking again schema by schema would not help;
# nor would it for an error without a SQLSTATE (the connection, not the server, failed).
_NOT_A_SCHEMA = ("08", "57", "58")
logger = logging.getLogger("billplane.tenant_scan")
_HAVING_TABLE = text(
    "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relname = :table AND n.nspname = ANY(:schemas)"
)


async def active_tenants(database: Database) -> dict[str, int]:
    """Every active tenant's schema name and id, in id order."""
    async with database.control_session() as session:
        query = select(Tenant.schema_name, Tenant.id).where(Tenant.status == "active").order_by(Tenant.id)
        return {str(row[0]): int(row[1]) for row in (await session.execute(query)).all()}


def batches(schemas: list[str], size: int = BATCH) -> Iterator[list[str]]:
    for start in range(0, len(schemas), size):
        yield schemas[start : start + size]


async def ids_by_schema(
    database: Database,
    schemas: list[str],
    *,
    table: str,
    part: Callable[[str], str],
    params: Mapping[str, Any] | None = None,
    failed: list[str] | None = None,
) -> dict[str, list[int]]:
    """``part(schema)``: a parenthesized SELECT of (schema name, id), or of (schema name, array of
    ids), for one schema; asked only of the schemas that have ``table``. Returns the ids per
    schema, in the order the parts gave them.

    Schemas whose own read fails are logged, appended to ``failed`` (when given) and left out."""
    rows: list[tuple[Any, ...]] = []
    async with database.engine.connect() as connection:
        present = list((await connection.execute(_HAVING_TABLE, {"table": table, "schemas": schemas})).scalars())
        await connection.rollback()
        if present:
            present.sort()
            try:
                rows = await _read(connection, present, part, params)
            except DBAPIError as error:
                if not _schema_may_be_at_fault(error):
                    raise
                rows = await _read_one_by_one(connection, present, part, params, failed)
    found: dict[str, list[int]] = {}
    for schema, ids in rows:
        found.setdefault(str(schema), []).extend(map(int, ids) if isinstance(ids, list) else (int(ids),))
    return found


async def _read(
    connection: AsyncConnection, schemas: list[str], part: Callable[[str], str], params: Mapping[str, Any] | None
) -> list[tuple[Any, ...]]:
    query = text(" UNION ALL ".join(part(schema) for schema in schemas))
    try:
        return [tuple(row) for row in (await connection.execute(query, dict(params or {}))).all()]
    finally:
        await connection.rollback()  # its locks go at once; a refused read's transaction ends


async def _read_one_by_one(
    connection: AsyncConnection,
    schemas: list[str],
    part: Callable[[str], str],
    params: Mapping[str, Any] | None,
    failed: list[str] | None,
) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for schema in schemas:
        try:
            rows += await _read(connection, [schema], part, params)
        except DBAPIError as error:
            if not _schema_may_be_at_fault(error):
                raise
            logger.exception("tenant schema %s cannot be read; it is left out until it can", schema)
            if failed is not None:
                failed.append(schema)
    return rows


def _schema_may_be_at_fault(error: DBAPIError) -> bool:
    sqlstate = str(getattr(error.orig, "sqlstate", None) or "")
    return bool(sqlstate) and not sqlstate.startswith(_NOT_A_SCHEMA)
