"""Creating and dropping tenant schemas.

A new schema is built from the current models in one DDL script and stamped at the tenant
track's head, so provisioning costs the same however long the migration history grows. A test
(tests/tenants/test_provisioning.py) proves the result equals running every migration from empty.
"""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path
from typing import Any

from alembic.script import ScriptDirectory
from sqlalchemy import Column, MetaData, PrimaryKeyConstraint, String, Table, create_mock_engine, text
from sqlalchemy.ext.asyncio import AsyncConnection

from billplane_tenants.database import scoped_script
from billplane_tenants.naming import quoted_schema

VERSION_TABLE = "alembic_version"
_REVISION_ID = re.compile(r"^[A-Za-z0-9_]{1,32}$")
_DUPLICATE_SCHEMA = "42P06"


class SchemaExistsError(Exception):
    """The tenant's schema name is taken (by an earlier tenant, or a schema made by hand)."""


def _version_table(metadata: MetaData) -> Table:
    # The same shape alembic gives its version table, so a provisioned schema and a migrated one
    # are identical down to the constraint name.
    return Table(
        VERSION_TABLE,
        metadata,
        Column("version_num", String(32), nullable=False),
        PrimaryKeyConstraint("version_num", name=f"{VERSION_TABLE}_pkc"),
    )


def render_create_ddl(metadata: MetaData) -> str:
    """The DDL ``metadata.create_all`` would run on PostgreSQL, as one script."""
    statements: list[str] = []

    def collect(sql: Any, *_args: Any, **_kwargs: Any) -> None:
        statements.append(str(sql.compile(dialect=engine.dialect)).strip())

    engine = create_mock_engine("postgresql+asyncpg://", collect)
    metadata.create_all(engine, checkfirst=False)
    version_metadata = MetaData()
    _version_table(version_metadata)
    version_metadata.create_all(engine, checkfirst=False)
    return ";\n".join(statements) + ";"


class SchemaProvisioner:
    """Builds tenant schemas from ``metadata`` and stamps them at the head of ``script_location``."""

    def __init__(self, metadata: MetaData, script_location: Path) -> None:
        self._metadata = metadata
        self.scripts = ScriptDirectory(str(script_location))

    @cached_property
    def head(self) -> str:
        head = self.scripts.get_current_head()
        if head is None:
            msg = f"the tenant migration track in {self.scripts.dir} has no revisions"
            raise RuntimeError(msg)
        return head

    @cached_property
    def ddl_script(self) -> str:
        return render_create_ddl(self._metadata)

    async def create_schema(self, connection: AsyncConnection, schema: str) -> str:
        """Create ``schema`` with every tenant table, inside the caller's transaction; return the head."""
        if not _REVISION_ID.fullmatch(self.head):
            raise RuntimeError(f"unexpected head revision id {self.head!r}")
        stamp = f"INSERT INTO {VERSION_TABLE} (version_num) VALUES ('{self.head}');"
        script = f"CREATE SCHEMA {quoted_schema(schema)};\n" + scoped_script(schema, f"{self.ddl_script}\n{stamp}")
        # One simple-protocol round trip for everything (asyncpg sends a multi-statement string
        # without parameters that way); it joins the caller's open transaction.
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        if driver is None:  # only a closed connection has none
            raise RuntimeError("the connection was closed during provisioning")
        try:
            await driver.execute(script)
        except Exception as exc:
            if getattr(exc, "sqlstate", None) == _DUPLICATE_SCHEMA:
                raise SchemaExistsError(f"schema {schema!r} already exists") from exc
            raise
        return self.head

    async def drop_schema(self, connection: AsyncConnection, schema: str) -> None:
        await connection.execute(text(f"DROP SCHEMA IF EXISTS {quoted_schema(schema)} CASCADE"))
