"""The one place that creates engines, connections and sessions.

Tenant tables are declared without a schema. A tenant-scoped transaction begins with
``set_config('search_path', <tenant schema>, true)``: transaction-local, so it ends with the
transaction and is safe behind a transaction-mode pooler. Every connection starts with a
search_path naming a schema that does not exist, so a query that escaped scoping finds no tenant
table and fails closed. The asyncpg prepared-statement cache is off because cached statements break
when two tenants' schemas differ (a rolling migration); see docs/adr/0001-tenant-scoping.md.

Round trips are what a request pays for most (ADR 0001, second addendum), so the scope costs none of its own: the
session marks the connection, and the transaction's ``BEGIN`` carries the ``set_config`` in the same
simple-protocol message. Statements are unnamed, so none needs a ``Close`` afterwards, and a
checkout is checked for a closed socket instead of pinged.

The hottest single-statement reads skip the session layer too (ADR 0001, third addendum):
``TenantSelect`` + ``RowReader`` run a repository's SELECT, rendered for the tenant's schema, on the
pooled asyncpg connection itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from typing import Any

import asyncpg
from sqlalchemy import Connection, Select, event, exc, text
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.pool import ConnectionPoolEntry, NullPool, PoolProxiedConnection
from sqlalchemy.sql.util import find_tables
from sqlalchemy.util import greenlet_spawn

from billplane_tenants.naming import UNSCOPED_SEARCH_PATH, validate_schema_name

TENANT_SCHEMA_KEY = "billplane_tenant_schema"
READER_KEY = "billplane_single_read"
_MAX_READER_ENGINES = 4096
_MAX_RENDERED_SCHEMAS = 4096
_SET_SEARCH_PATH = text("SELECT set_config('search_path', :schema, true)")
_LOCK_AND_SET_SEARCH_PATH = text(
    "SELECT pg_advisory_xact_lock(:namespace, :key), set_config('search_path', :schema, true)"
)


def normalize_url(url: str) -> str:
    """Accept the usual ``postgres://`` / ``postgresql://`` spellings and pin the asyncpg driver."""
    parsed = make_url(url)
    if parsed.get_backend_name() not in {"postgres", "postgresql"}:
        msg = f"billplane needs PostgreSQL, got a {parsed.get_backend_name()!r} URL"
        raise ValueError(msg)
    return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def scope_connection(connection: Connection, schema: str, *, lock: tuple[int, int] | None = None) -> None:
    """Point the current transaction of ``connection`` at one tenant's schema.

    ``lock``: also take this transaction-scoped advisory lock first, in the same round trip.
    """
    if lock is None:
        connection.execute(_SET_SEARCH_PATH, {"schema": validate_schema_name(schema)})
    else:
        parameters = {"schema": validate_schema_name(schema), "namespace": lock[0], "key": lock[1]}
        connection.execute(_LOCK_AND_SET_SEARCH_PATH, parameters)


def _begin_scoped(begin: str, schema: str) -> str:
    return f"{begin.rstrip().rstrip(';')}; SELECT set_config('search_path', '{validate_schema_name(schema)}', true);"


class ScopingConnection(asyncpg.Connection):  # type: ignore[misc] # asyncpg ships no types
    """An asyncpg connection whose next ``BEGIN`` also scopes the transaction it opens.

    ``scope_next_transaction`` only marks the connection; the SQL goes out with the ``BEGIN``
    that SQLAlchemy's asyncpg adapter sends lazily before the transaction's first statement, so
    the scope is one round trip fewer (and no prepared statement) per transaction.
    """

    __slots__ = ("_billplane_scope",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._billplane_scope: str | None = None

    def scope_next_transaction(self, schema: str | None) -> None:
        self._billplane_scope = None if schema is None else validate_schema_name(schema)

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:  # noqa: ASYNC109 - asyncpg's signature
        schema = self._billplane_scope
        if schema is not None and not args and query.lstrip()[:5].upper() == "BEGIN":
            self._billplane_scope = None
            query = _begin_scoped(query, schema)
        result: str = await super().execute(query, *args, timeout=timeout)
        return result


def _unnamed_statement() -> str:
    # An unnamed statement is replaced by the next one, so it never needs a Close round trip; with
    # the statement cache off nothing is reused anyway. It also suits transaction-mode poolers.
    return ""


def scoped_script(schema: str, body: str, *, lock: tuple[int, int] | None = None) -> str:
    """``body`` as one SQL script run in ``schema``'s scope (after taking ``lock``), then unscoped.

    For DDL sent in one simple-protocol round trip (provisioning, the migration fan-out); the
    schema name is validated, never interpolated raw.
    """
    lines = [f"SELECT pg_advisory_xact_lock({int(lock[0])}, {int(lock[1])});"] if lock else []
    lines += [
        f"SELECT set_config('search_path', '{validate_schema_name(schema)}', true);",
        body,
        f"SELECT set_config('search_path', '{UNSCOPED_SEARCH_PATH}', true);",
    ]
    return "\n".join(lines)


class ScopedSession(Session):
    """A Session that scopes every transaction it begins to ``info[TENANT_SCHEMA_KEY]``, if set."""


@event.listens_for(ScopedSession, "after_begin")
def _scope_new_transaction(session: Session, _tx: SessionTransaction, connection: Connection) -> None:
    # Runs for every transaction the session begins, so a commit in the middle of a request
    # cannot silently continue unscoped: the next transaction is scoped again.
    schema = session.info.get(TENANT_SCHEMA_KEY)
    driver = connection.connection.driver_connection
    if isinstance(driver, ScopingConnection) and not driver.is_in_transaction():
        # Always written, None included: a mark can never outlive the session that made it.
        driver.scope_next_transaction(schema)
    elif schema is not None:
        scope_connection(connection, schema)


class SingleReadError(RuntimeError):
    """A reader session was asked for more than one statement, or to write."""


@event.listens_for(ScopedSession, "do_orm_execute")
def _one_statement_per_reader(state: Any) -> None:
    info = state.session.info
    if READER_KEY in info:
        if info[READER_KEY]:
            raise SingleReadError("a reader session runs exactly one statement: use a tenant session")
        info[READER_KEY] = True
        if not state.is_select:
            raise SingleReadError("a reader session only reads: use a tenant session")


@event.listens_for(ScopedSession, "before_flush")
def _readers_never_flush(session: Session, _context: Any, _instances: Any) -> None:
    if READER_KEY in session.info:
        raise SingleReadError("a reader session only reads: use a tenant session")


def _refuse_closed_connection(
    dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry, _proxy: PoolProxiedConnection
) -> None:
    # Instead of a pre-ping (three round trips with SQLAlchemy's asyncpg adapter): a connection
    # whose server went away (restart, terminated backend) has a closed socket; the pool then
    # retries the checkout with a fresh connection. A server that vanishes silently is caught on
    # first use: SQLAlchemy invalidates the pool on a disconnect error.
    driver = getattr(dbapi_connection, "driver_connection", None)
    if driver is not None and driver.is_closed():
        raise exc.DisconnectionError("the connection was closed by the server")


def _forget_scope(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    driver = getattr(dbapi_connection, "driver_connection", None)
    if isinstance(driver, ScopingConnection):
        driver.scope_next_transaction(None)


class RowRecord(asyncpg.Record):  # type: ignore[misc] # asyncpg ships no types
    """An asyncpg record whose columns are also attributes, like a SQLAlchemy ``Row``."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


_DIALECT = asyncpg_dialect()  # type: ignore[no-untyped-call] # SQLAlchemy's dialect __init__ is untyped


def _converts_results(column_type: Any) -> bool:
    try:
        return column_type.dialect_impl(_DIALECT).result_processor(_DIALECT, None) is not None
    except (TypeError, KeyError):  # a processor that depends on the driver's column type (Numeric)
        return True


class TenantSelect:
    """A SELECT of tenant tables, built once, run by ``RowReader`` straight on the asyncpg driver.

    SQLAlchemy's session, engine and result layers cost several times what the statement itself
    does on the busiest read (docs/performance.md, "The tenant API over HTTP"). The statement is
    still built with SQLAlchemy in its repository; here it is rendered once per tenant schema,
    schema-qualified like ``schema_translate_map`` does, and cached as text. Only what needs no
    SQLAlchemy processing is accepted, so a driver row is exactly what the ORM would have given:
    tenant tables only (no schema of their own), and no parameter or column type that SQLAlchemy
    converts on the way in or out. Anything else raises ``TypeError`` when the module is imported.
    """

    __slots__ = ("_rendered", "_statement", "defaults", "parameters")

    def __init__(self, statement: Select[*tuple[Any, ...]]) -> None:
        if not isinstance(statement, Select):
            raise TypeError("a TenantSelect is a SELECT")
        foreign = sorted({f"{table.schema}.{table.name}" for table in find_tables(statement) if table.schema})
        if foreign:
            raise TypeError(f"a TenantSelect reads tenant tables only, not {', '.join(foreign)}")
        compiled = statement.compile(dialect=_DIALECT)
        converted = [
            bind.key for bind in compiled.binds.values() if bind.type.dialect_impl(_DIALECT).bind_processor(_DIALECT)
        ]
        converted += [str(column.key) for column in statement.selected_columns if _converts_results(column.type)]
        if converted:
            raise TypeError(f"a TenantSelect takes no values SQLAlchemy converts: {', '.join(converted)}")
        self._statement = statement
        self.parameters: tuple[str, ...] = tuple(compiled.positiontup or ())
        # Values the statement carries itself (a limit, a literal compared with): used unless given.
        self.defaults: dict[str, Any] = {
            name: bind.value for name, bind in compiled.binds.items() if name in self.parameters and not bind.required
        }
        self._rendered: dict[str, str] = {}

    def sql(self, schema: str) -> str:
        """The statement's text for one tenant schema: every tenant table qualified with it."""
        sql = self._rendered.get(schema)
        if sql is None:
            compiled = self._statement.compile(
                dialect=_DIALECT,
                schema_translate_map={None: validate_schema_name(schema)},
                render_schema_translate=True,
            )
            sql = str(compiled)
            if len(self._rendered) >= _MAX_RENDERED_SCHEMAS:
                self._rendered.clear()  # bounded; rendering again costs well under a millisecond
            self._rendered[schema] = sql
        return sql


class RowReader:
    """Runs ``TenantSelect`` statements for one tenant, each on a pooled connection's driver.

    One statement sees one snapshot by itself, so like ``Database.reader`` it runs in
    PostgreSQL's implicit transaction: no BEGIN, no COMMIT, no session. The tenant is in the SQL
    text (the connection keeps the fail-closed search_path), and nothing here can write: the
    statement is a SELECT of tenant tables checked when it was built. Statements are unnamed and
    never cached, so a tenant schema that changes mid-migration cannot break another tenant's
    reads (ADR 0001).
    """

    __slots__ = ("_database", "_gate", "schema")

    def __init__(self, database: Database, schema: str, gate: AbstractAsyncContextManager[Any] | None = None) -> None:
        self._database = database
        self.schema = validate_schema_name(schema)
        self._gate = gate if gate is not None else nullcontext()

    async def one(self, query: TenantSelect, **values: Any) -> RowRecord | None:
        """The statement's first row, or None."""
        arguments = [values[name] if name in values else query.defaults[name] for name in query.parameters]
        sql = query.sql(self.schema)
        async with self._gate:
            pooled = await self._database.engine.raw_connection()
            try:
                # Unnamed and uncached, like the adapter's statements: Parse, then Bind/Execute.
                driver: Any = pooled.driver_connection
                statement = await driver.prepare(sql, name="", record_class=RowRecord)
                row: RowRecord | None = await statement.fetchrow(*arguments)
            except asyncpg.PostgresError:
                await greenlet_spawn(pooled.close)
                raise
            except BaseException:
                # Cancelled or disconnected mid-protocol: the connection's state is unknown.
                pooled.invalidate()
                await greenlet_spawn(pooled.close)
                raise
            await greenlet_spawn(pooled.close)
        return row


class Database:
    """Engine plus session factories for the control schema and for tenant schemas."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        max_overflow: int = 0,
        pool_recycle_seconds: int = 1800,
        application_name: str = "billplane",
    ) -> None:
        self.url = normalize_url(url)
        connect_args: dict[str, Any] = {
            "prepared_statement_cache_size": 0,
            "prepared_statement_name_func": _unnamed_statement,
            "connection_class": ScopingConnection,
            "server_settings": {"search_path": UNSCOPED_SEARCH_PATH, "application_name": application_name},
        }
        # Small pools, recycled: one backend that touches many tenant schemas keeps a relcache
        # entry per relation (~4 KB each, FACTS.md), so long-lived connections grow without bound.
        self.engine: AsyncEngine = create_async_engine(
            self.url,
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_recycle=pool_recycle_seconds,
            connect_args=connect_args,
        )
        event.listen(self.engine.sync_engine.pool, "checkout", _refuse_closed_connection)
        event.listen(self.engine.sync_engine.pool, "checkin", _forget_scope)
        self._connect_args = connect_args
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False, sync_session_class=ScopedSession)
        self._reader_engines: dict[str, AsyncEngine] = {}

    async def dispose(self) -> None:
        await self.engine.dispose()

    def session(self, tenant_schema: str | None = None) -> AsyncSession:
        """A new session: tenant-scoped when ``tenant_schema`` is given, else control-only."""
        info: dict[str, Any] = {}
        if tenant_schema is not None:
            info[TENANT_SCHEMA_KEY] = validate_schema_name(tenant_schema)
        return self._sessions(info=info)

    @asynccontextmanager
    async def tenant_session(self, tenant_schema: str) -> AsyncIterator[AsyncSession]:
        """One transaction scoped to a tenant: committed on success, rolled back on error."""
        async with self.session(tenant_schema) as session, session.begin():
            yield session

    def reader(self, tenant_schema: str) -> AsyncSession:
        """A session for ONE read-only statement in a tenant's schema, outside any transaction.

        A single statement sees one snapshot by itself, so it needs no BEGIN and no COMMIT: the
        schema is written into the statement (``schema_translate_map``) and the statement runs in
        PostgreSQL's implicit transaction, two round trips instead of four. The connection's
        search_path stays the fail-closed default, so ``text()`` SQL finds no tenant table. A
        second statement, or any write, raises ``SingleReadError``: those need ``tenant_session``.
        No statement is cached, so divergent tenant schemas cannot break one another (ADR 0001).
        """
        schema = validate_schema_name(tenant_schema)
        engine = self._reader_engines.get(schema)
        if engine is None:
            if len(self._reader_engines) >= _MAX_READER_ENGINES:
                self._reader_engines.clear()  # bounded; a proxy costs microseconds to rebuild
            engine = self.engine.execution_options(isolation_level="AUTOCOMMIT", schema_translate_map={None: schema})
            self._reader_engines[schema] = engine
        return self._sessions(bind=engine, info={READER_KEY: False})

    def rows(self, tenant_schema: str, gate: AbstractAsyncContextManager[Any] | None = None) -> RowReader:
        """A reader of single ``TenantSelect`` statements in a tenant's schema; see ``RowReader``.

        ``gate``: entered around each statement's connection checkout (the app's fair queue).
        """
        return RowReader(self, tenant_schema, gate)

    @asynccontextmanager
    async def control_session(self) -> AsyncIterator[AsyncSession]:
        """One transaction that can reach only the control schema."""
        async with self.session() as session, session.begin():
            yield session

    @asynccontextmanager
    async def dedicated_connection(self, *, statement_cache_size: int) -> AsyncIterator[AsyncConnection]:
        """A connection of its own, outside the pool, with a prepared-statement cache.

        For the migration fan-out only: it runs each revision's statements against schemas that
        all have that revision's shape, so cached statements never meet a different shape. Request
        sessions never use it (their tenants' schemas may differ, mid-migration).
        """
        connect_args = {**self._connect_args, "prepared_statement_cache_size": statement_cache_size}
        engine = create_async_engine(self.url, poolclass=NullPool, connect_args=connect_args)
        try:
            async with engine.connect() as connection:
                yield connection
        finally:
            await engine.dispose()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A raw connection in one transaction (DDL, provisioning, migrations)."""
        async with self.engine.begin() as connection:
            yield connection
