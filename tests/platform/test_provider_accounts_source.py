"""DatabaseAccountSource (what sync and webhooks resolve adapters through), tenant deletion, the
control migration, and the demo tenant's sandbox account."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import msgspec
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import Connection, text

from billplane.cli.dev import WEBHOOK_ENTRY, ensure_sandbox_account
from billplane.cli.devenv import DevEnvironment
from billplane.plugins import ProviderAdapter, UnknownProviderError
from billplane.plugins.host import PluginHost
from billplane.provider_accounts.models import ProviderAccount
from billplane.provider_accounts.resolved import AccountSource
from billplane.provider_accounts.source import DatabaseAccountSource
from billplane.provider_accounts.vault import CredentialsUnavailableError
from billplane.runtime import Runtime
from billplane_tenants import CONTROL_SCHEMA, ControlBase
from tests.conftest import CreatedTenant, create_tenant
from tests.platform.provider_accounts_fake import FakeAdapter, FakeCredentials, FakeProvider, good_body

Client = AsyncTestClient[Litestar]
PATH = "/v1/provider-accounts"


class StricterCredentials(msgspec.Struct, forbid_unknown_fields=True):
    api_key: Literal["sk_live_only"]
    region: str = "eu"


@pytest.fixture
def fake(app: Litestar, runtime: Runtime) -> FakeProvider:
    return FakeProvider().install(app).install(runtime.plugins)


async def _account(client: Client, tenant: CreatedTenant, **fields: Any) -> dict[str, Any]:
    response = await client.post(PATH, json=good_body(**fields), headers=tenant.headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_an_account_resolves_to_an_adapter_built_from_its_own_credentials(
    client: Client, admin_headers: dict[str, str], fake: FakeProvider, runtime: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers)
    created = await _account(
        client,
        tenant,
        mode="live",
        credentials={"api_key": "good_resolved_7777", "region": "us"},
        webhook_secret="whsec_x1",
    )
    source: AccountSource = DatabaseAccountSource(runtime)

    resolved = await source.account(created["id"])

    assert resolved is not None
    assert (resolved.id, resolved.tenant_id, resolved.tenant_schema) == (created["id"], tenant.id, tenant.schema)
    assert (resolved.provider, resolved.mode, resolved.is_default) == ("fake", "live", True)
    assert isinstance(resolved.adapter, ProviderAdapter)
    assert isinstance(resolved.adapter, FakeAdapter)
    context = resolved.adapter.context
    assert context.credentials == FakeCredentials(api_key="good_resolved_7777", region="us")
    assert (context.webhook_secret, context.tenant_id, context.account_id) == ("whsec_x1", tenant.id, created["id"])
    await resolved.adapter.check_credentials()  # a working adapter

    assert await source.account(999_999_999) is None
    assert await source.account(2**63) is None
    assert (await client.delete(f"{PATH}/{created['id']}", headers=tenant.headers)).status_code == 204
    assert await source.account(created["id"]) is None


async def test_default_accounts_are_the_tenants_default_of_each_provider(
    client: Client,
    admin_headers: dict[str, str],
    fake: FakeProvider,
    runtime: Runtime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    FakeProvider(name="other").install(client.app).install(runtime.plugins)
    FakeProvider(name="gone").install(client.app)  # installed in the API process, not in this one
    tenant, neighbour = await create_tenant(client, admin_headers), await create_tenant(client, admin_headers)
    fake_default = await _account(client, tenant)
    await _account(client, tenant)  # not the default
    other_default = await _account(client, tenant, provider="other")
    gone_default = await _account(client, tenant, provider="gone")
    await _account(client, neighbour)
    source = DatabaseAccountSource(runtime)

    with caplog.at_level(logging.WARNING, logger="billplane.provider_accounts"):
        defaults = await source.default_accounts(tenant.id)

    assert [(account.provider, account.id) for account in defaults] == [
        ("fake", fake_default["id"]),
        ("other", other_default["id"]),
    ]
    assert all(account.is_default and account.tenant_schema == tenant.schema for account in defaults)
    assert f"default account {gone_default['id']} is for provider 'gone'" in caplog.text
    with pytest.raises(UnknownProviderError):
        await source.account(gone_default["id"])
    assert await source.default_accounts(999_999_999) == []


async def test_stored_credentials_that_no_longer_fit_the_provider_are_unavailable_not_echoed(
    client: Client, admin_headers: dict[str, str], fake: FakeProvider, runtime: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers)
    created = await _account(client, tenant, credentials={"api_key": "good_fits_today_1234"})
    host = PluginHost()  # the fake plugin upgraded, with a stricter credentials schema
    host.register(replace(FakeProvider().plugin(), credentials_type=StricterCredentials))
    runtime.plugins = host

    with pytest.raises(CredentialsUnavailableError) as caught:
        await DatabaseAccountSource(runtime).account(created["id"])
    assert "no longer fit the fake provider's schema" in str(caught.value)
    assert "good_fits_today_1234" not in str(caught.value)


async def test_live_account_ids_leave_out_deleted_accounts_and_other_tenants(
    client: Client, admin_headers: dict[str, str], fake: FakeProvider, runtime: Runtime
) -> None:
    tenant, other = await create_tenant(client, admin_headers), await create_tenant(client, admin_headers)
    kept, gone = (await _account(client, tenant))["id"], (await _account(client, tenant))["id"]
    theirs = (await _account(client, other))["id"]
    assert (await client.delete(f"{PATH}/{gone}", headers=tenant.headers)).status_code == 204

    source = DatabaseAccountSource(runtime)
    async with runtime.database.tenant_session(tenant.schema) as session:
        live = await source.live_account_ids(session, tenant.id, [kept, gone, theirs, 999_999])
    assert live == {kept}


async def test_deleting_a_tenant_deletes_its_accounts(
    client: Client, admin_headers: dict[str, str], fake: FakeProvider, runtime: Runtime
) -> None:
    tenant, kept = await create_tenant(client, admin_headers), await create_tenant(client, admin_headers)
    await _account(client, tenant)
    await _account(client, kept)
    response = await client.delete(f"/v1/admin/tenants/{tenant.slug}", headers=admin_headers)
    assert response.status_code == 204, response.text
    async with runtime.database.control_session() as session:
        counts: dict[int, int] = dict(
            (
                await session.execute(
                    text(
                        "SELECT tenant_id, count(*) FROM control.provider_accounts "
                        "WHERE tenant_id IN (:gone, :kept) GROUP BY tenant_id"
                    ),
                    {"gone": tenant.id, "kept": kept.id},
                )
            ).all()
        )
    assert counts == {kept.id: 1}


async def test_the_control_migration_matches_the_model(runtime: Runtime) -> None:
    def differences(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(
            connection,
            opts={
                "include_schemas": True,
                "compare_type": True,
                "include_name": lambda name, type_, _parent: type_ != "schema" or name == CONTROL_SCHEMA,
            },
        )
        return [diff for diff in compare_metadata(context, ControlBase.metadata) if "alembic_version" not in str(diff)]

    assert ProviderAccount.__table__ in ControlBase.metadata.sorted_tables
    async with runtime.database.engine.connect() as connection:
        assert await connection.run_sync(differences) == []
        constraints = await connection.scalars(
            text("SELECT conname FROM pg_constraint WHERE conrelid = 'control.provider_accounts'::regclass ORDER BY 1")
        )
        expected = {
            f"ck_provider_accounts_{name}" for name in ("mode", "status", "deleted_at", "credentials", "deleted")
        }
        assert expected <= set(constraints)


async def test_the_demo_tenant_gets_one_sandbox_account(
    client: Client, admin_headers: dict[str, str], runtime: Runtime, tmp_path: Path
) -> None:
    tenant = await create_tenant(client, admin_headers, "demo")
    environment = DevEnvironment(tmp_path)
    runtime.plugins = PluginHost()  # as if the sandbox distribution were not installed
    assert (
        await ensure_sandbox_account(runtime, environment, tenant.id, tenant.schema) is None
    )  # no sandbox installed: skipped
    assert WEBHOOK_ENTRY not in environment.secrets()

    sandbox = FakeProvider(name="sandbox", accept="sk_sandbox_").install(runtime.plugins)
    account_id = await ensure_sandbox_account(runtime, environment, tenant.id, tenant.schema)
    assert account_id is not None
    webhook_secret = environment.secrets()[WEBHOOK_ENTRY]
    assert json.loads((tmp_path / "dev-secrets.json").read_text())[WEBHOOK_ENTRY] == webhook_secret
    assert (tmp_path / "dev-secrets.json").stat().st_mode & 0o077 == 0

    resolved = await DatabaseAccountSource(runtime).account(account_id)
    assert resolved is not None
    assert (resolved.provider, resolved.mode, resolved.is_default) == ("sandbox", "test", True)
    assert sandbox.contexts[-1].credentials == FakeCredentials(api_key="sk_sandbox_demo")
    assert sandbox.contexts[-1].webhook_secret == webhook_secret

    assert (
        await ensure_sandbox_account(runtime, environment, tenant.id, tenant.schema) is None
    )  # the next start: nothing new
    async with runtime.database.control_session() as session:
        count = await session.scalar(
            text("SELECT count(*) FROM control.provider_accounts WHERE tenant_id = :t"), {"t": tenant.id}
        )
    assert count == 1


async def test_a_demo_sandbox_that_refuses_is_a_warning_not_a_crash(
    client: Client, admin_headers: dict[str, str], runtime: Runtime, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant = await create_tenant(client, admin_headers, "demo")
    runtime.plugins = PluginHost()  # replaced by a sandbox that refuses the demo's key
    FakeProvider(name="sandbox", accept="sk_other_").install(runtime.plugins)
    assert await ensure_sandbox_account(runtime, DevEnvironment(tmp_path), tenant.id, tenant.schema) is None
    assert "warning: the demo tenant got no sandbox account" in capsys.readouterr().err


async def test_the_demo_account_passes_the_real_sandbox(
    client: Client, admin_headers: dict[str, str], runtime: Runtime, tmp_path: Path
) -> None:
    tenant = await create_tenant(client, admin_headers, "demo")
    assert "sandbox" in runtime.plugins.names()  # the built-in distribution, found by its entry point
    account_id = await ensure_sandbox_account(runtime, DevEnvironment(tmp_path), tenant.id, tenant.schema)
    assert account_id is not None
    resolved = await DatabaseAccountSource(runtime).account(account_id)
    assert resolved is not None
    await resolved.adapter.check_credentials()


async def test_a_replaced_webhook_secret_is_still_accepted_for_a_day(
    client: Client, admin_headers: dict[str, str], fake: FakeProvider, runtime: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers)
    created = await _account(client, tenant, webhook_secret="whsec_old_1111")
    source: AccountSource = DatabaseAccountSource(runtime)

    def secrets(resolved: Any) -> tuple[str | None, str | None]:
        assert isinstance(resolved.adapter, FakeAdapter)
        return resolved.adapter.context.webhook_secret, resolved.adapter.context.previous_webhook_secret

    assert secrets(await source.account(created["id"])) == ("whsec_old_1111", None)
    patched = await client.patch(
        f"{PATH}/{created['id']}", json={"webhook_secret": "whsec_new_2222"}, headers=tenant.headers
    )
    assert patched.status_code == 200, patched.text
    assert "whsec_old_1111" not in patched.text
    assert secrets(await source.account(created["id"])) == ("whsec_new_2222", "whsec_old_1111")

    # Sending the same secret again does not forget the one before it.
    await client.patch(f"{PATH}/{created['id']}", json={"webhook_secret": "whsec_new_2222"}, headers=tenant.headers)
    assert secrets(await source.account(created["id"])) == ("whsec_new_2222", "whsec_old_1111")

    async with runtime.database.control_session() as session:
        await session.execute(
            text(
                "UPDATE control.provider_accounts SET previous_webhook_secret_until = now() - interval '1 second'"
                " WHERE id = :id"
            ),
            {"id": created["id"]},
        )
    assert secrets(await source.account(created["id"])) == ("whsec_new_2222", None)
