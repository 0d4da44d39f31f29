"""A failed sync records (and logs) no secret of the account it called: the tenant's read keys see
``last_sync_error``, and a provider may echo the key it was called with."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from billplane.runtime import Runtime
from tests.conftest import CreatedTenant, create_tenant
from tests.platform.provider_accounts_fake import good_body
from tests.platform.sync_fakes import FAST, FakeAdapter, FakeState, clear_jobs, drain, register_fakes
from tests.platform.test_provider_accounts_secrecy import KEY, WEBHOOK_SECRET

Client = AsyncTestClient[Litestar]


@pytest.fixture
async def worker(app: Litestar, runtime: Runtime, fake: FakeState) -> Runtime:
    """The fake provider behind a real account: connected through the API, opened by the vault
    (``DatabaseAccountSource``), as the worker of a deployment opens it."""
    app_runtime: Runtime = app.state.runtime
    register_fakes(app_runtime.plugins, fake)
    register_fakes(runtime.plugins, fake)
    runtime.sync_options = FAST
    await clear_jobs(runtime)
    return runtime


async def _customer(client: Client, admin_headers: dict[str, str]) -> tuple[CreatedTenant, int]:
    """A tenant with a fake account (KEY, WEBHOOK_SECRET) and a customer queued for it."""
    tenant = await create_tenant(client, admin_headers, "syncleak")
    body = good_body(credentials={"api_key": KEY}, webhook_secret=WEBHOOK_SECRET)
    connected = await client.post("/v1/provider-accounts", json=body, headers=tenant.headers)
    assert connected.status_code == 201, connected.text
    created = await client.post("/v1/customers", json={"name": "Ada"}, headers=tenant.headers)
    assert created.status_code == 201, created.text
    return tenant, int(created.json()["id"])


async def _recorded(client: Client, worker: Runtime, tenant: CreatedTenant, customer_id: int) -> tuple[str, str, str]:
    """The customer's sync status and last_sync_error as the API shows them, and the outbox row's last_error."""
    shown: dict[str, Any] = (await client.get(f"/v1/customers/{customer_id}", headers=tenant.headers)).json()
    async with worker.database.tenant_session(tenant.schema) as session:
        last_error = (await session.execute(text("SELECT last_error FROM outbox ORDER BY id"))).scalar_one()
    return shown["sync_status"], shown["last_sync_error"], last_error


async def test_a_provider_error_echoing_the_key_is_recorded_and_logged_without_it(
    client: Client,
    admin_headers: dict[str, str],
    worker: Runtime,
    fake: FakeState,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="billplane.sync")
    tenant, customer_id = await _customer(client, admin_headers)
    fake.failures.append(("permanent", f"Invalid API key provided: {KEY}; signing with {WEBHOOK_SECRET}"))

    await drain(worker)

    status, shown, stored = await _recorded(client, worker, tenant, customer_id)
    assert status == "failed"
    # Still useful: the provider's text and its code, minus the secrets.
    expected = "Invalid API key provided: [redacted]; signing with [redacted] (fake_error)"
    assert (shown, stored) == (expected, expected)
    assert expected in caplog.text  # the worker's log line says what failed, scrubbed the same way
    assert KEY not in caplog.text
    assert WEBHOOK_SECRET not in caplog.text


async def test_a_plugin_failing_outside_the_contract_records_its_type_not_its_text(
    client: Client,
    admin_headers: dict[str, str],
    worker: Runtime,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="billplane.sync")

    async def broken(self: FakeAdapter, *_: object, **__: object) -> None:
        credentials: Any = self.context.credentials
        raise RuntimeError(f"bug: cannot send {credentials.api_key} to the provider")

    monkeypatch.setattr(FakeAdapter, "ensure_customer", broken)
    tenant, customer_id = await _customer(client, admin_headers)

    await drain(worker)  # FAST: a few quick retries, then failed

    status, shown, stored = await _recorded(client, worker, tenant, customer_id)
    assert status == "failed"
    assert shown == stored
    assert shown.startswith(f"gave up after {FAST.max_attempts} attempts: RuntimeError")
    assert "bug: cannot send" not in shown  # no str(exc) of an error outside the contract
    assert KEY not in shown
    assert "RuntimeError" in caplog.text
    assert KEY not in caplog.text  # the traceback is kept in the log, and scrubbed there


async def test_a_secret_too_short_for_the_logs_redactor_is_scrubbed_by_name(
    client: Client, admin_headers: dict[str, str], worker: Runtime, fake: FakeState
) -> None:
    short = "hush-42"  # under the 12 characters the process-wide redactor remembers, and of no key shape
    tenant = await create_tenant(client, admin_headers, "syncshort")
    body = good_body(credentials={"api_key": KEY}, webhook_secret=short)
    assert (await client.post("/v1/provider-accounts", json=body, headers=tenant.headers)).status_code == 201
    created = await client.post("/v1/customers", json={"name": "Ada"}, headers=tenant.headers)
    fake.failures.append(("permanent", f"signature made with {short} does not match"))

    await drain(worker)

    _, shown, stored = await _recorded(client, worker, tenant, int(created.json()["id"]))
    assert shown == stored == "signature made with [redacted] does not match (fake_error)"
