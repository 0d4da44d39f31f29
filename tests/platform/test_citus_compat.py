"""The schema stays what Citus schema-based sharding accepts (docs/operations/citus.md).

Citus cannot be installed here, so these checks read PostgreSQL's catalog for what Citus would
refuse or mishandle when a tenant schema becomes a distributed schema: a foreign key leaving it or
entering it, an identity narrower than bigint, a view, an invoice number drawn from a sequence.
Each checker is also run on a deliberately bad schema, to prove it can fail.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from billplane.runtime import Runtime
from tests.conftest import create_tenant

CONTROL = "control"
JOBS = "billplane_jobs"

# Foreign keys whose two tables are in different schemas (Citus: a distributed schema's tables may
# reference only their own schema or reference tables; nothing may reference into it).
_CROSS_SCHEMA_FKS = text("""
    SELECT con.conname, src_ns.nspname, src.relname, dst_ns.nspname, dst.relname
    FROM pg_constraint con
    JOIN pg_class src ON src.oid = con.conrelid JOIN pg_namespace src_ns ON src_ns.oid = src.relnamespace
    JOIN pg_class dst ON dst.oid = con.confrelid JOIN pg_namespace dst_ns ON dst_ns.oid = dst.relnamespace
    WHERE con.contype = 'f' AND src_ns.oid <> dst_ns.oid AND (src_ns.nspname = :schema OR dst_ns.nspname = :schema)
""")
# Identity and serial columns (a sequence owned by the column) that are not bigint: Citus refuses
# to distribute a table with a smallint or int identity, and makes sequences unique per node only
# in bigint's range.
_NARROW_GENERATED = text("""
    SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod)
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = :schema AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
      AND a.atttypid <> 'int8'::regtype
      AND (a.attidentity <> '' OR pg_get_serial_sequence(format('%I.%I', n.nspname, c.relname), a.attname) IS NOT NULL)
""")
# Integer primary-key columns narrower than bigint, other than a single-row table's constant key
# (a CHECK pins it to 1, as invoice_counters and billing_settings do).
_NARROW_KEYS = text("""
    SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod)
    FROM pg_constraint pk JOIN pg_class c ON c.oid = pk.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(pk.conkey)
    WHERE pk.contype = 'p' AND n.nspname = :schema AND a.atttypid IN ('int2'::regtype, 'int4'::regtype)
      AND NOT EXISTS (
        SELECT 1 FROM pg_constraint ck WHERE ck.conrelid = c.oid AND ck.contype = 'c'
          AND pg_get_constraintdef(ck.oid) = format('CHECK ((%I = 1))', a.attname))
""")
# Views (plain or materialized) in the schema, or anywhere, that read from it.
_VIEWS = text("""
    SELECT DISTINCT v_ns.nspname || '.' || v.relname
    FROM pg_class v JOIN pg_namespace v_ns ON v_ns.oid = v.relnamespace
    LEFT JOIN pg_rewrite r ON r.ev_class = v.oid
    LEFT JOIN pg_depend d ON d.objid = r.oid AND d.classid = 'pg_rewrite'::regclass
    LEFT JOIN pg_class t ON t.oid = d.refobjid LEFT JOIN pg_namespace t_ns ON t_ns.oid = t.relnamespace
    WHERE v.relkind IN ('v', 'm') AND (v_ns.nspname = :schema OR (t_ns.nspname = :schema AND t.oid <> v.oid))
""")
# Tables in the schema that inherit or are inherited (Citus refuses both in a distributed schema),
# and foreign tables (refused too).
_UNSUPPORTED_TABLES = text("""
    SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = :schema AND (c.relkind = 'f'
      OR (c.relkind = 'r' AND EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid OR i.inhparent = c.oid)))
""")
# Tables without a primary key: citus_schema_move's default (logical replication) needs a replica
# identity on every table of the schema to keep the tenant writable during a move.
_NO_PRIMARY_KEY = text("""
    SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = :schema AND c.relkind = 'r'
      AND NOT EXISTS (SELECT 1 FROM pg_constraint pk WHERE pk.conrelid = c.oid AND pk.contype = 'p')
""")
# A column default that draws from a sequence (nextval): which columns are sequence-backed.
_SEQUENCE_BACKED = text("""
    SELECT table_name, column_name FROM information_schema.columns
    WHERE table_schema = :schema AND (is_identity = 'YES' OR column_default LIKE 'nextval(%')
""")


async def _rows(connection: AsyncConnection, query: object, schema: str) -> list[tuple[object, ...]]:
    return [tuple(row) for row in (await connection.execute(query, {"schema": schema})).all()]  # type: ignore[call-overload]


async def citus_problems(connection: AsyncConnection, schema: str) -> list[str]:
    """What would stop ``schema`` from being (or staying) a well-behaved Citus distributed schema."""
    problems = [f"cross-schema foreign key {row}" for row in await _rows(connection, _CROSS_SCHEMA_FKS, schema)]
    problems += [
        f"generated column narrower than bigint {row}" for row in await _rows(connection, _NARROW_GENERATED, schema)
    ]
    problems += [f"integer key narrower than bigint {row}" for row in await _rows(connection, _NARROW_KEYS, schema)]
    problems += [f"view over the schema {row[0]}" for row in await _rows(connection, _VIEWS, schema)]
    problems += [
        f"inheritance or foreign table {row[0]}" for row in await _rows(connection, _UNSUPPORTED_TABLES, schema)
    ]
    problems += [f"no primary key on {row[0]}" for row in await _rows(connection, _NO_PRIMARY_KEY, schema)]
    return problems


@pytest.fixture
async def tenant_schema(client: AsyncTestClient[Litestar], admin_headers: dict[str, str]) -> str:
    """A tenant provisioned the way billplane provisions every tenant (the admin API)."""
    return (await create_tenant(client, admin_headers, "citus")).schema


@pytest.fixture
async def connection(runtime: Runtime) -> AsyncIterator[AsyncConnection]:
    async with runtime.database.engine.connect() as connection:
        yield connection
        await connection.rollback()


async def test_a_provisioned_tenant_schema_can_become_a_distributed_schema(
    connection: AsyncConnection, tenant_schema: str
) -> None:
    assert await citus_problems(connection, tenant_schema) == []
    tables = await _rows(connection, text("SELECT count(*) FROM pg_tables WHERE schemaname = :schema"), tenant_schema)
    assert int(str(tables[0][0])) >= 20  # the checks looked at a real, full tenant schema


async def test_the_control_and_queue_schemas_hold_no_key_into_a_tenant_and_wide_identities(
    connection: AsyncConnection, tenant_schema: str
) -> None:
    # They stay regular schemas on the coordinator; a foreign key from them into a tenant schema
    # would block distributing it, and their identities are bigint like the tenants'.
    for schema in (CONTROL, JOBS):
        problems = await citus_problems(connection, schema)
        assert problems == [], schema


async def test_invoice_numbers_come_from_the_counter_row_not_a_sequence(
    connection: AsyncConnection, tenant_schema: str
) -> None:
    # A sequence skips values on rollback (and Citus gives each node its own range): invoice
    # numbers must be gapless, so they come from invoice_counters, incremented in the invoice's
    # transaction. Only surrogate ids (where gaps are harmless) may be sequence-backed.
    backed = await _rows(connection, _SEQUENCE_BACKED, tenant_schema)
    assert backed, "expected the surrogate ids to be identities"
    assert all(column == "id" for _, column in backed), backed
    assert ("invoices", "number") not in backed
    columns = {
        (str(table), str(column)): default
        for table, column, default in await _rows(
            connection,
            text(
                "SELECT table_name, column_name, column_default FROM information_schema.columns "
                "WHERE table_schema = :schema AND table_name IN ('invoices', 'invoice_counters')"
            ),
            tenant_schema,
        )
    }
    assert columns[("invoices", "number")] is None  # set by the code from the counter, at finalization
    assert columns[("invoice_counters", "last_number")] == "'0'::bigint"


async def test_no_tenant_table_is_read_by_a_view_or_rule(connection: AsyncConnection, tenant_schema: str) -> None:
    # Citus does not support the rule system; views are rules. Checked over the whole database
    # (a view in any schema reading a tenant table would join tenants' data outside the API).
    rules = await connection.execute(
        text("SELECT count(*) FROM pg_rules WHERE schemaname NOT IN ('pg_catalog', 'information_schema')")
    )
    assert rules.scalar_one() == 0
    views = await connection.execute(
        text("SELECT count(*) FROM pg_views WHERE schemaname NOT IN ('pg_catalog', 'information_schema')")
    )
    assert views.scalar_one() == 0


async def test_each_check_catches_a_schema_citus_would_refuse(connection: AsyncConnection, tenant_schema: str) -> None:
    bad = f"citus_bad_{secrets.token_hex(4)}"
    statements = [
        f'CREATE SCHEMA "{bad}"',
        f'CREATE TABLE "{bad}".narrow_identity (id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY)',
        f'CREATE TABLE "{bad}".narrow_serial (id bigint PRIMARY KEY, n smallserial)',
        f'CREATE TABLE "{bad}".narrow_key (id integer PRIMARY KEY)',
        f'CREATE TABLE "{bad}".single_row (id smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1))',  # allowed
        f'CREATE TABLE "{bad}".owner_link (tenant_id bigint REFERENCES {CONTROL}.tenants (id))',
        f'CREATE TABLE "{bad}".parent (id bigint)',
        f'CREATE TABLE "{bad}".child () INHERITS ("{bad}".parent)',
        f'CREATE VIEW "{bad}".everything AS SELECT id FROM "{bad}".narrow_key',
        f'CREATE TABLE "{tenant_schema}".victim (id bigint PRIMARY KEY)',
        f'CREATE TABLE "{bad}".into_tenant (victim_id bigint REFERENCES "{tenant_schema}".victim (id))',
    ]
    for statement in statements:
        await connection.execute(text(statement))
    try:
        problems = " | ".join(await citus_problems(connection, bad))
        assert "cross-schema foreign key ('owner_link_tenant_id_fkey'" in problems
        assert "cross-schema foreign key ('into_tenant_victim_id_fkey'" in problems
        assert "generated column narrower than bigint ('narrow_identity', 'id', 'integer')" in problems
        assert "generated column narrower than bigint ('narrow_serial', 'n', 'smallint')" in problems
        assert "integer key narrower than bigint ('narrow_key', 'id', 'integer')" in problems
        assert "single_row" not in problems
        assert f"view over the schema {bad}.everything" in problems
        assert "inheritance or foreign table parent" in problems
        assert "inheritance or foreign table child" in problems
        assert "no primary key on owner_link" in problems
        # The key into the tenant schema is caught from the tenant's side as well.
        tenant_side = " | ".join(await citus_problems(connection, tenant_schema))
        assert "into_tenant_victim_id_fkey" in tenant_side
        assert "invoices" not in tenant_side
    finally:
        await connection.rollback()  # nothing of the bad schema outlives the test
