"""Finding work in every active tenant in few queries: what the periodic jobs share.

One read per batch of tenant schemas (``UNION ALL`` of one small SELECT per schema) instead of
one round trip per tenant. Schemas not migrated far enough to have the table asked about are
left out, and the read's transaction ends at once: it holds a lock on every table it touched
(``max_locks_per_transaction``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from sqlalchemy import select, text

from billplane_tenants import Database, Tenant

# Schemas per read. The planner locks every table a read names and every index of those tables
# until the read's transaction ends: the dunning read takes 19 locks per schema (invoices,
# customers, payments and their indexes). PostgreSQL shares max_locks_per_transaction x
# max_connections slots among all sessions, 6,400 by default, so 500 schemas a read (9,500 locks)
# ran out of shared memory and failed the other sessions' queries too. 50 keeps each read under
# 1,000 (tests/platform/test_scan_locks.py measures every periodic read against this).
BATCH = 50
LOCK_BUDGET = 1_000
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
) -> dict[str, list[int]]:
    """``part(schema)``: a parenthesized SELECT of (schema name, id), or of (schema name, array of
    ids), for one schema; asked only of the schemas that have ``table``. Returns the ids per
    schema, in the order the parts gave them."""
    async with database.engine.connect() as connection:
        present = list((await connection.execute(_HAVING_TABLE, {"table": table, "schemas": schemas})).scalars())
        rows: list[tuple[Any, ...]] = []
        if present:
            query = text(" UNION ALL ".join(part(schema) for schema in sorted(present)))
            rows = [tuple(row) for row in (await connection.execute(query, dict(params or {}))).all()]
        await connection.rollback()
    found: dict[str, list[int]] = {}
    for schema, ids in rows:
        found.setdefault(str(schema), []).extend(map(int, ids) if isinstance(ids, list) else (int(ids),))
    return found
