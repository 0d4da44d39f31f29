"""The cheaper request path keeps every guarantee of the scoping mechanism (ADR 0001, addendum 2).

- the scope rides on the transaction's BEGIN, and a mark never outlives the session that made it;
- a reader session runs one SELECT outside a transaction, in its tenant's schema only, fails
  closed for raw SQL and refuses a second statement or a write;
- a connection the server closed is replaced at checkout, without a pre-ping.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import literal_column, select, text
from sqlalchemy.exc import ProgrammingError

from billplane.audit.models import AuditEvent
from billplane.runtime import Runtime
from billplane_tenants import Database
from billplane_tenants.database import SingleReadError
from tests.tenants.seeded import seeded_tenant


async def _count(database: Database, schema: str) -> int:
    async with database.tenant_session(schema) as session:
        return len((await session.execute(select(AuditEvent))).scalars().all())


async def test_the_scope_rides_on_begin_and_each_transaction_gets_its_own(runtime: Runtime, single: Database) -> None:
    first, second = await seeded_tenant(runtime, 2, "rt"), await seeded_tenant(runtime, 5, "rt")
    for _ in range(3):
        assert await _count(single, first) == 2
        assert await _count(single, second) == 5


async def test_a_mark_never_outlives_its_session(runtime: Runtime, single: Database) -> None:
    schema = await seeded_tenant(runtime, 1, "rt")
    # The session takes its connection (so the connection is marked) but runs no statement, so
    # no BEGIN ever consumes the mark: returning the connection must clear it.
    async with single.tenant_session(schema) as session:
        await session.connection()
    async with single.transaction() as connection:  # connection-level: no session listener runs
        assert await connection.scalar(text("SELECT current_setting('search_path')")) == "billplane_no_tenant"
    with pytest.raises(ProgrammingError, match="does not exist"):
        async with single.control_session() as control:
            await control.execute(select(AuditEvent))


async def test_a_reader_sees_only_its_tenant(runtime: Runtime, single: Database) -> None:
    first, second = await seeded_tenant(runtime, 2, "rt"), await seeded_tenant(runtime, 4, "rt")
    for schema, expected in [(first, 2), (second, 4), (first, 2)]:
        async with single.reader(schema) as reader:
            actors = set((await reader.execute(select(AuditEvent.actor))).scalars())
        assert actors == {schema.removeprefix("tenant_")}
        assert await _count(single, schema) == expected  # transactional sessions still scoped right


async def test_a_reader_fails_closed_for_untranslated_names(runtime: Runtime, single: Database) -> None:
    schema = await seeded_tenant(runtime, 1, "rt")
    # A table named in text is not translated: the fail-closed search_path answers it.
    with pytest.raises(ProgrammingError, match="does not exist"):
        async with single.reader(schema) as reader:
            await reader.execute(select(literal_column("count(*)")).select_from(text("audit_log")))
    # Raw SQL is refused outright: outside a transaction it could write and commit at once.
    with pytest.raises(SingleReadError, match="only reads"):
        async with single.reader(schema) as reader:
            await reader.execute(text("SELECT 1"))


async def test_a_reader_runs_one_statement_and_never_writes(runtime: Runtime, single: Database) -> None:
    schema = await seeded_tenant(runtime, 1, "rt")
    async with single.reader(schema) as reader:
        await reader.execute(select(AuditEvent))
        with pytest.raises(SingleReadError, match="exactly one statement"):
            await reader.execute(select(AuditEvent))
    async with single.reader(schema) as reader:
        reader.add(AuditEvent(actor="x", action="write"))
        with pytest.raises(SingleReadError, match="only reads"):
            await reader.flush()
    assert await _count(single, schema) == 1


async def test_readers_survive_divergent_schemas(runtime: Runtime, single: Database) -> None:
    old, new = await seeded_tenant(runtime, 3, "rt"), await seeded_tenant(runtime, 3, "rt")
    async with runtime.database.transaction() as connection:
        await connection.execute(text(f'ALTER TABLE "{new}".audit_log ALTER COLUMN actor TYPE varchar(200)'))
    for _ in range(3):
        for schema in (old, new):
            async with single.reader(schema) as reader:
                rows = (await reader.execute(select(AuditEvent.actor))).scalars().all()
            assert rows == [schema.removeprefix("tenant_")] * 3


async def test_a_connection_closed_by_the_server_is_replaced_at_checkout(runtime: Runtime, single: Database) -> None:
    schema = await seeded_tenant(runtime, 2, "rt")
    async with single.transaction() as connection:
        pid = await connection.scalar(text("SELECT pg_backend_pid()"))
    async with runtime.database.transaction() as admin:
        assert await admin.scalar(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
    await asyncio.sleep(0.2)  # let the client's event loop see the socket close
    # The first request after the termination already gets a working connection.
    assert await _count(single, schema) == 2
    async with single.transaction() as connection:
        assert await connection.scalar(text("SELECT pg_backend_pid()")) != pid
