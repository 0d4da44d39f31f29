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

from tests.conftest import CreatedTenant, create_tenant
from tests.platform.listable import events_listable

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
    # The restored events keep their transaction ids, below this server's: the list shows them.
    await events_listable(database_url)
    customers = [ada.json()["id"], again.json()["id"]]
    assert await _customers_listed(client, tenant) == customers  # not the lost one


async def _customers_listed(client: AsyncTestClient[Litestar], tenant: CreatedTenant) -> list[int]:
    """The customers of the tenant's customer.created events, following the list's cursor."""
    listed: list[int] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"type": "customer.created", "limit": 1}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/v1/events", params=params, headers=tenant.headers)).json()
        listed += [event["object_id"] for event in page["data"]]
        cursor = page.get("next_cursor")
        if not cursor:
            return listed


async def test_events_restored_from_another_server_list_again_after_the_documented_reset(
    client: AsyncTestClient[Litestar], admin_headers: dict[str, str], database_url: str
) -> None:
    """A dump from another server brings that server's transaction ids: when they are ahead of
    this one's, the list hides the restored events and would put new ones before them. The
    documented `UPDATE ... SET tx = '0'` lists them first again, and a client's cursor continues."""
    tenant = await create_tenant(client, admin_headers, "bk")
    first = (await client.post("/v1/customers", json={"email": "a@example.com"}, headers=tenant.headers)).json()
    second = (await client.post("/v1/customers", json={"email": "b@example.com"}, headers=tenant.headers)).json()
    await events_listable(database_url)
    params: dict[str, str | int] = {"type": "customer.created", "limit": 1}
    page = (await client.get("/v1/events", params=params, headers=tenant.headers)).json()
    assert [event["object_id"] for event in page["data"]] == [first["id"]]
    cursor = page["next_cursor"]  # a client that read one event before the move

    connection = await asyncpg.connect(_libpq_dsn(database_url))
    try:
        # As restored from a server whose transaction ids ran far ahead of this one's.
        ahead = "(pg_current_xact_id()::text::bigint + 1000000000)::text::xid8"
        await connection.execute(f'UPDATE "{tenant.schema}".events SET tx = {ahead}')
        await events_listable(database_url)
        assert await _customers_listed(client, tenant) == []  # hidden until the counter got there
        await connection.execute(f"UPDATE \"{tenant.schema}\".events SET tx = '0'")  # the documented step
    finally:
        await connection.close()

    third = (await client.post("/v1/customers", json={"email": "c@example.com"}, headers=tenant.headers)).json()
    await events_listable(database_url)
    assert await _customers_listed(client, tenant) == [first["id"], second["id"], third["id"]]
    params |= {"cursor": cursor, "limit": 10}
    page = (await client.get("/v1/events", params=params, headers=tenant.headers)).json()
    assert [event["object_id"] for event in page["data"]] == [second["id"], third["id"]]
