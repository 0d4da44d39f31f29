"""docs/operations/backups.md, done for real: one tenant's schema dumped with `pg_dump -n`, lost,
restored with `pg_restore`, and served again by the API with its data and its id sequences.

Uses the machine's PostgreSQL client binaries against the suite's real server; skipped (with the
reason) only when pg_dump is absent or older than the server, as it refuses to dump a newer one.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import anyio
import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.engine import make_url

from tests.conftest import create_tenant

CLIENT_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def _tool(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = [directory / name for directory in CLIENT_DIRS if (directory / name).exists()]
    return str(candidates[0]) if candidates else None


def _libpq_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _run(*command: str) -> str:
    """Run a PostgreSQL client tool (by the path found above) without blocking the event loop."""
    result = await anyio.run_process(list(command), check=True)
    return result.stdout.decode()


def _major(version_text: str) -> int:
    match = re.search(r"(\d+)(?:\.\d+)?", version_text)
    if match is None:
        raise ValueError(f"no version in {version_text!r}")
    return int(match.group(1))


async def test_one_tenant_is_dumped_dropped_and_restored(
    client: AsyncTestClient[Litestar], admin_headers: dict[str, str], database_url: str, tmp_path: Path
) -> None:
    pg_dump, pg_restore = _tool("pg_dump"), _tool("pg_restore")
    if pg_dump is None or pg_restore is None:
        pytest.skip("pg_dump/pg_restore are not installed (Debian: postgresql-client)")
    dsn = _libpq_dsn(database_url)
    connection = await asyncpg.connect(dsn)
    try:
        server_major = _major(await connection.fetchval("SHOW server_version"))
        client_major = _major(await _run(pg_dump, "--version"))
        if client_major < server_major:
            pytest.skip(f"pg_dump {client_major} cannot dump a PostgreSQL {server_major} server")

        tenant = await create_tenant(client, admin_headers, "bk")
        other = await create_tenant(client, admin_headers, "bk")
        ada = await client.post("/v1/customers", json={"email": "ada@example.com"}, headers=tenant.headers)
        assert ada.status_code == 201, ada.text
        await client.post("/v1/customers", json={"email": "someone@example.com"}, headers=other.headers)

        # The documented commands: custom format, this tenant's schema only.
        archive = tmp_path / f"{tenant.schema}.dump"
        await _run(pg_dump, "--format=custom", f"--schema={tenant.schema}", f"--file={archive}", dsn)
        listing = await _run(pg_restore, "--list", str(archive))
        assert f"TABLE DATA {tenant.schema} customers" in listing
        assert other.schema not in listing  # nothing of another tenant

        # Lost: a customer created after the backup disappears with the schema.
        late = await client.post("/v1/customers", json={"email": "late@example.com"}, headers=tenant.headers)
        assert late.status_code == 201
        await connection.execute(f'DROP SCHEMA "{tenant.schema}" CASCADE')
        assert await connection.fetchval("SELECT to_regnamespace($1)", tenant.schema) is None

        await _run(pg_restore, "--exit-on-error", "--single-transaction", f"--dbname={dsn}", str(archive))
    finally:
        await connection.close()

    restored = await client.get(f"/v1/customers/{ada.json()['id']}", headers=tenant.headers)
    assert restored.status_code == 200, restored.text
    assert restored.json()["email"] == "ada@example.com"
    gone = await client.get(f"/v1/customers/{late.json()['id']}", headers=tenant.headers)
    assert gone.status_code == 404  # the state of the backup, not of the moment of loss
    # The sequences came back with the tables: a new customer takes the next id, no collision.
    again = await client.post("/v1/customers", json={"email": "again@example.com"}, headers=tenant.headers)
    assert again.status_code == 201, again.text
    assert again.json()["id"] > ada.json()["id"]
    neighbour = await client.get("/v1/customers", headers=other.headers)
    assert [row["email"] for row in neighbour.json()["data"]] == ["someone@example.com"]
