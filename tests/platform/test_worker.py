"""Workers: crash safety with a real process killed mid-job, the in-process worker, `billplane worker`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import anyio
import psycopg
import pytest
from click.testing import CliRunner
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.engine import make_url

from billplane.app import create_app
from billplane.cli.main import cli
from billplane.runtime import Runtime
from billplane.settings import Settings
from billplane.sync.faults import AFTER_PROVIDER_CALL, FAULT_ENV
from tests.conftest import ADMIN_KEY, SECRET_KEY, create_tenant
from tests.platform.sync_fakes import AccountRow, FakeServer, FakeState, StaticAccounts, clear_jobs, register_fakes

REPO = Path(__file__).resolve().parents[2]
LEASE_SECONDS = 1.0


def _worker_process(config: dict[str, object], *, fault: str | None) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != FAULT_ENV}
    if fault is not None:
        env[FAULT_ENV] = fault
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "tests.platform.sync_crash_worker", json.dumps(config)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def _state(runtime: Runtime, schema: str) -> tuple[list[tuple[str, int]], tuple[str, str | None], list[str]]:
    async with runtime.database.tenant_session(schema) as session:
        rows = [(r[0], r[1]) for r in (await session.execute(text("SELECT status, attempts FROM outbox"))).all()]
        customer = (await session.execute(text("SELECT sync_status, last_sync_error FROM customers"))).one()
        ids = list((await session.execute(text("SELECT provider_customer_id FROM provider_customers"))).scalars())
    return rows, (customer[0], customer[1]), ids


async def test_a_worker_killed_after_the_provider_call_leaves_one_provider_object(
    client: AsyncTestClient[Litestar], admin_headers: dict[str, str], runtime: Runtime, database_url: str
) -> None:
    state = FakeState()
    with FakeServer(state) as server:
        app_runtime: Runtime = client.app.state.runtime
        register_fakes(app_runtime.plugins, None)
        tenant = await create_tenant(client, admin_headers, "crash")
        account = AccountRow(id=301, tenant_id=tenant.id, tenant_schema=tenant.schema, server=server.url)
        app_runtime.accounts = StaticAccounts(app_runtime.plugins, [account])
        await clear_jobs(runtime)
        created = await client.post("/v1/customers", json={"name": "Ada"}, headers=tenant.headers)
        assert created.status_code == 201, created.text
        config = {
            "database_url": database_url,
            "server": server.url,
            "tenant_id": tenant.id,
            "schema": tenant.schema,
            "account_id": account.id,
            "lease_seconds": LEASE_SECONDS,
        }

        crashed = _worker_process(config, fault=AFTER_PROVIDER_CALL)

        # Killed between the provider's answer and the local commit: the provider has the
        # customer, billplane does not know it yet, and the row waits for its lease to run out.
        assert crashed.returncode == -signal.SIGKILL, crashed.stderr
        key = f"billplane-{tenant.id}-1"
        assert state.calls == [("ensure_customer", key)]
        assert await _state(runtime, tenant.schema) == ([("pending", 0)], ("pending", None), [])

        await anyio.sleep(LEASE_SECONDS + 0.2)
        restarted = _worker_process(config, fault=None)

        assert restarted.returncode == 0, restarted.stderr
        assert state.calls == [("ensure_customer", key), ("ensure_customer", key)]  # the same key again
        assert dict(state.creations) == {key: 1}  # so still exactly one provider customer
        assert await _state(runtime, tenant.schema) == ([("done", 0)], ("synced", None), [state.by_key[key]])


@pytest.fixture
def worker_app(settings: Settings) -> Litestar:
    return create_app(settings, worker=True)


async def test_the_api_runs_an_in_process_worker_when_asked(
    worker_app: Litestar, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    fake = FakeState()
    app_runtime: Runtime = worker_app.state.runtime
    register_fakes(app_runtime.plugins, fake)
    accounts = StaticAccounts(app_runtime.plugins)
    app_runtime.accounts = accounts
    async with AsyncTestClient(worker_app) as client:
        tenant = await create_tenant(client, admin_headers, "inproc")
        accounts.add(AccountRow(id=401, tenant_id=tenant.id, tenant_schema=tenant.schema))
        customer = (await client.post("/v1/customers", json={"name": "Ada"}, headers=tenant.headers)).json()
        with anyio.fail_after(10):  # no test code runs a worker here: the app's own one does it
            while True:
                shown = await client.get(f"/v1/customers/{customer['id']}", headers=tenant.headers)
                if shown.json()["sync_status"] == "synced":
                    break
                await anyio.sleep(0.05)
    assert len(fake.creations) == 1


def test_billplane_worker_once_runs_due_jobs_and_exits(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BILLPLANE_DATABASE_URL", database_url)
    monkeypatch.setenv("BILLPLANE_SECRET_KEY", SECRET_KEY)
    result = CliRunner().invoke(cli, ["worker", "--once", "--concurrency", "2"], catch_exceptions=False)
    assert result.exit_code == 0, result.output


def test_billplane_run_has_a_no_worker_switch() -> None:
    result = CliRunner().invoke(cli, ["run", "--help"])
    assert "--no-worker" in result.output


def test_billplane_run_exits_when_it_cannot_bind(database_url: str) -> None:
    # The in-process worker opens the job queue's pool as the server starts; stopped mid-way by the
    # failed bind, the pool's tasks were left to the event loop, which waited for them for ever.
    env = os.environ | {"BILLPLANE_DATABASE_URL": database_url, "BILLPLANE_SECRET_KEY": SECRET_KEY}
    env |= {"BILLPLANE_ADMIN_KEY": ADMIN_KEY, "BILLPLANE_LOG_FORMAT": "text"}
    # The in-process worker would first run what earlier tests left in the queue (their tenants'
    # outbox rows, deliveries, events), and its shutdown waits for those jobs: in CI, past 60 s.
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute("SET search_path TO billplane_jobs")  # procrastinate's triggers name no schema
        connection.execute("DELETE FROM procrastinate_jobs")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = subprocess.run(  # noqa: S603 - our own interpreter and entry point
            [sys.executable, "-c", "from billplane.cli.main import cli; cli()", "run", "--port", port],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert result.returncode != 0
    assert "address already in use" in result.stderr + result.stdout
