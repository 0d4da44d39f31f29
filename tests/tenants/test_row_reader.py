"""RowReader runs one TenantSelect on the pool's driver connection with every guarantee of the
reader session it replaces on the hottest GET (ADR 0001, addendum 3): its tenant's schema only,
fail closed for names it did not qualify, nothing cached across schemas that diverge mid-migration,
the connection back in the pool after an error or a cancellation.
"""

from __future__ import annotations

import asyncio
import enum

import asyncpg
import pytest
from sqlalchemy import Enum, Numeric, bindparam, insert, literal_column, select, text

from billplane.audit.models import AuditEvent
from billplane.runtime import Runtime
from billplane_tenants import Database
from billplane_tenants.control import Tenant
from billplane_tenants.database import TenantSelect
from tests.tenants.seeded import seeded_tenant

_ACTORS = TenantSelect(
    select(AuditEvent.actor.label("actor"), AuditEvent.action.label("action"))
    .where(AuditEvent.action == bindparam("action"))
    .order_by(AuditEvent.id)
)


async def test_a_row_reader_sees_only_its_tenant(runtime: Runtime, single: Database) -> None:
    first, second = await seeded_tenant(runtime, 2, "rr"), await seeded_tenant(runtime, 3, "rr")
    for schema in (first, second, first):
        row = await single.rows(schema).one(_ACTORS, action="seed.1")
        assert row is not None
        assert (row.actor, row["action"]) == (schema.removeprefix("tenant_"), "seed.1")
        with pytest.raises(AttributeError):
            _ = row.no_such_column
    assert await single.rows(first).one(_ACTORS, action="seed.2") is None  # only the second has it


async def test_a_row_reader_fails_closed_for_names_it_did_not_qualify(runtime: Runtime, single: Database) -> None:
    schema = await seeded_tenant(runtime, 1, "rr")
    unqualified = TenantSelect(select(literal_column("count(*)")).select_from(text("audit_log")))
    with pytest.raises(asyncpg.UndefinedTableError):
        await single.rows(schema).one(unqualified)
    # The error gave the connection back: the pool's only connection still serves reads.
    assert await single.rows(schema).one(_ACTORS, action="seed.0") is not None


def test_only_selects_of_tenant_tables_without_conversions_are_accepted() -> None:
    with pytest.raises(TypeError, match="is a SELECT"):
        TenantSelect(insert(AuditEvent).values(actor="x", action="y"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="tenant tables only"):
        TenantSelect(select(Tenant.slug))

    class Colour(enum.Enum):
        RED = "red"

    with pytest.raises(TypeError, match="converts"):
        TenantSelect(select(AuditEvent.id).where(AuditEvent.actor == bindparam("c", type_=Enum(Colour))))
    with pytest.raises(TypeError, match="converts"):
        TenantSelect(select(literal_column("1.5", Numeric(asdecimal=False)).label("n")))


async def test_row_readers_survive_divergent_schemas(runtime: Runtime, single: Database) -> None:
    old, new = await seeded_tenant(runtime, 3, "rr"), await seeded_tenant(runtime, 3, "rr")
    for schema in (old, new):  # both read once before the migration
        assert await single.rows(schema).one(_ACTORS, action="seed.0") is not None
    async with runtime.database.transaction() as connection:
        await connection.execute(text(f'ALTER TABLE "{new}".audit_log ALTER COLUMN actor TYPE varchar(200)'))
    for _ in range(3):
        for schema in (old, new):
            row = await single.rows(schema).one(_ACTORS, action="seed.2")
            assert row is not None
            assert row.actor == schema.removeprefix("tenant_")


async def test_a_cancelled_read_gives_back_a_fresh_connection(runtime: Runtime, single: Database) -> None:
    schema = await seeded_tenant(runtime, 1, "rr")
    slow = TenantSelect(
        select(AuditEvent.actor.label("actor")).where(literal_column("pg_sleep(5) IS NOT NULL")).limit(1)
    )
    task = asyncio.create_task(single.rows(schema).one(slow))
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    row = await asyncio.wait_for(single.rows(schema).one(_ACTORS, action="seed.0"), timeout=10)
    assert row is not None
