"""The one place that creates engines, connections and sessions.

Tenant tables are declared without a schema. A tenant-scoped transaction begins with
``set_config('search_path', <tenant schema>, true)``: transaction-local, so it ends with the
transaction and is safe behind a transaction-mode pooler. Every connection starts with a
search_path naming a schema that does not exist, so a query that escaped scoping finds no tenant
table and fails closed. The asyncpg prepared-statement cache is off because cached statements break
when two tenants' schemas differ (a rolling migration); see docs/adr/0001-tenant-scoping.md.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Connection, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.pool import NullPool

from billplane_tenants.naming import UNSCOPED_SEARCH_PATH, validate_schema_name

TENANT_SCHEMA_KEY = "billplane_tenant_schema"
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
    if schema is not None:
        scope_connection(connection, schema)


class Database:
    """Engine plus session factories for the control schema and for tenant schemas."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 5,
        max_overflow: int = 5,
        pool_recycle_seconds: int = 1800,
        application_name: str = "billplane",
    ) -> None:
        self.url = normalize_url(url)
        connect_args: dict[str, Any] = {
            "prepared_statement_cache_size": 0,
            "server_settings": {"search_path": UNSCOPED_SEARCH_PATH, "application_name": application_name},
        }
        # Small pools, recycled: one backend that touches many tenant schemas keeps a relcache
        # entry per relation (~4 KB each, FACTS.md), so long-lived connections grow without bound.
        self.engine: AsyncEngine = create_async_engine(
            self.url,
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_recycle=pool_recycle_seconds,
            pool_pre_ping=True,
            connect_args=connect_args,
        )
        self._connect_args = connect_args
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False, sync_session_class=ScopedSession)

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
