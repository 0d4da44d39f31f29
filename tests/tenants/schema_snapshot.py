"""A comparable description of one schema: tables, columns, types, indexes and constraints."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

_COLUMNS = text("""
    SELECT table_name, column_name, ordinal_position, data_type, udt_name, is_nullable, column_default,
           character_maximum_length, numeric_precision, numeric_scale, is_identity, identity_generation
    FROM information_schema.columns WHERE table_schema = :schema
    ORDER BY table_name, ordinal_position
""")
_INDEXES = text("SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = :schema ORDER BY 1, 2")
_CONSTRAINTS = text("""
    SELECT rel.relname, con.conname, con.contype, pg_get_constraintdef(con.oid)
    FROM pg_constraint con JOIN pg_class rel ON rel.oid = con.conrelid
    JOIN pg_namespace n ON n.oid = rel.relnamespace WHERE n.nspname = :schema
    ORDER BY 1, 2
""")
_RELATIONS = text("""
    SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = :schema ORDER BY 1
""")


async def schema_snapshot(connection: AsyncConnection, schema: str) -> dict[str, list[tuple[Any, ...]]]:
    snapshot: dict[str, list[tuple[Any, ...]]] = {}
    for name, query in [("columns", _COLUMNS), ("indexes", _INDEXES), ("constraints", _CONSTRAINTS)]:
        rows = (await connection.execute(query, {"schema": schema})).all()
        # Index definitions name their schema; take it out so two schemas can be compared.
        snapshot[name] = [tuple(str(value).replace(f"{schema}.", "") for value in row) for row in rows]
    snapshot["relations"] = [tuple(row) for row in (await connection.execute(_RELATIONS, {"schema": schema})).all()]
    return snapshot
