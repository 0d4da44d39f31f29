"""Tenant scoping fails closed, and one tenant's divergent schema cannot break another's queries."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, ProgrammingError
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from billplane.audit.models import AuditEvent
from billplane.runtime import Runtime
from billplane_tenants import Database
from billplane_tenants.database import normalize_url
from tests.conftest import unique_slug


async def _tenant(runtime: Runtime, rows: int = 3) -> str:
    async with runtime.database.control_session() as session:
        tenant, _ = await runtime.registry.create(session, unique_slug("scope"), "Scope")
    async with runtime.database.tenant_session(tenant.schema_name) as session:
        session.add_all(AuditEvent(actor=tenant.slug, action=f"seed.{i}") for i in range(rows))
    return tenant.schema_name


async def test_unscoped_session_cannot_see_tenant_tables(runtime: Runtime) -> None:
    await _tenant(runtime)
    with pytest.raises(ProgrammingError, match="does not exist"):
        async with runtime.database.control_session() as session:
            await session.execute(select(AuditEvent))


async def test_scope_ends_with_the_transaction(runtime: Runtime) -> None:
    schema = await _tenant(runtime)
    async with runtime.database.session(schema) as session:
        await session.execute(select(AuditEvent))
        await session.commit()
        # A new transaction on the same session is scoped again (after_begin), never left open.
        assert await session.scalar(text("SELECT current_setting('search_path')")) == schema
    async with runtime.database.engine.connect() as connection:
        assert await connection.scalar(text("SELECT current_setting('search_path')")) == "billplane_no_tenant"


async def test_each_tenant_reads_only_its_own_rows(runtime: Runtime) -> None:
    first, second = await _tenant(runtime, rows=2), await _tenant(runtime, rows=4)
    for schema, expected in [(first, 2), (second, 4)]:
        async with runtime.database.tenant_session(schema) as session:
            actors = set((await session.execute(select(AuditEvent.actor))).scalars())
            count = len((await session.execute(select(AuditEvent))).scalars().all())
        assert count == expected
        assert actors == {schema.removeprefix("tenant_")}


async def _diverge(runtime: Runtime, schema: str) -> None:
    # What a rolling migration does: this tenant's table already has the new shape.
    async with runtime.database.transaction() as connection:
        await connection.execute(text(f'ALTER TABLE "{schema}".audit_log ALTER COLUMN actor TYPE varchar(200)'))
        await connection.execute(text(f'ALTER TABLE "{schema}".audit_log ADD COLUMN extra text'))


async def test_divergent_schema_cannot_break_another_tenant(database_url: str, runtime: Runtime) -> None:
    old, new = await _tenant(runtime), await _tenant(runtime)
    await _diverge(runtime, new)
    # One pooled connection, so both tenants' statements run on the same backend, interleaved.
    single = Database(database_url, pool_size=1, max_overflow=0)
    try:
        for _ in range(5):
            for schema in (old, new):
                async with single.tenant_session(schema) as session:
                    rows = (await session.execute(select(AuditEvent).order_by(AuditEvent.id))).scalars().all()
                assert [row.actor for row in rows] == [schema.removeprefix("tenant_")] * 3
    finally:
        await single.dispose()


async def test_the_same_interleaving_breaks_with_a_statement_cache(database_url: str, runtime: Runtime) -> None:
    """Control experiment: proves the test above exercises the failure it guards against."""
    old, new = await _tenant(runtime), await _tenant(runtime)
    await _diverge(runtime, new)
    engine = create_async_engine(normalize_url(database_url), pool_size=1, max_overflow=0)
    sessions = async_sessionmaker(engine)
    statement = select(AuditEvent).order_by(AuditEvent.id)

    async def interleave() -> None:
        for _ in range(3):
            for schema in (old, new):
                async with sessions() as session, session.begin():
                    await session.execute(text("SELECT set_config('search_path', :s, true)"), {"s": schema})
                    await session.execute(statement)

    try:
        with pytest.raises(DBAPIError, match=r"InvalidCachedStatement|cached statement plan is invalid"):
            await interleave()
    finally:
        await engine.dispose()
