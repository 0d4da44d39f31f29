"""`billplane secrets rotate`: every account's secrets and every webhook endpoint's signing secret
move to the current key, idempotently and resumably, after which the old keys can be removed. Runs
on a database of its own, emptied before each test, so the counts it reports are exactly this
test's rows."""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select, text

from billplane.cli.main import cli
from billplane.events.models import WebhookEndpoint
from billplane.events.rotation import rotate_endpoints
from billplane.events.schemas import WebhookEndpointCreate
from billplane.events.service import EndpointService
from billplane.events.vault import EndpointVault
from billplane.provider_accounts.repository import ProviderAccountRepository
from billplane.provider_accounts.rotation import rotate
from billplane.provider_accounts.schemas import ProviderAccountCreate
from billplane.provider_accounts.service import ProviderAccountService
from billplane.provider_accounts.source import DatabaseAccountSource
from billplane.provider_accounts.vault import AccountVault, CredentialsUnavailableError
from billplane.runtime import Runtime
from billplane.settings import DatabaseSettings, SecuritySettings, Settings
from tests.conftest import SECRET_KEY, CreatedTenant, _admin_execute, fresh_database, unique_slug
from tests.platform.events.conftest import FAST
from tests.platform.events.helpers import drain, emit_event
from tests.platform.events.receiver import receiver
from tests.platform.events.test_delivery import verify
from tests.platform.provider_accounts_fake import FakeCredentials, FakeProvider

T = TypeVar("T")
KEYS = {name: f"{name}:{base64.b64encode(secrets.token_bytes(32)).decode()}" for name in ("k1", "k2", "k3", "kx")}


# Emptied before each test instead of made for each: PostgreSQL checkpoints at every DROP DATABASE,
# which took 20 s once the suite's other worker had written thousands of schemas.
_EMPTY = """
DO $$
DECLARE name text;
BEGIN
    FOR name IN SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tenant\\_%' LOOP
        EXECUTE format('DROP SCHEMA %I CASCADE', name);
    END LOOP;
    FOR name IN SELECT format('%I.%I', schemaname, tablename) FROM pg_tables
            WHERE schemaname IN ('control', 'billplane_jobs') AND tablename <> 'alembic_version' LOOP
        EXECUTE 'TRUNCATE ' || name || ' CASCADE';
    END LOOP;
END $$
"""


@pytest.fixture(scope="session")
def _rotation_database(server_url: str) -> Iterator[str]:
    with fresh_database(server_url, "billplane_rotation") as url:
        yield url


@pytest.fixture
def own_database(_rotation_database: str) -> str:
    """A database holding nothing but this test's rows."""
    asyncio.run(_admin_execute(_rotation_database, _EMPTY))
    return _rotation_database


def _settings(url: str, *keys: str) -> Settings:
    encryption_keys = ",".join(KEYS[key] for key in keys) or None
    security = SecuritySettings(secret_key=SECRET_KEY, encryption_keys=encryption_keys)
    return Settings(database=DatabaseSettings(url=url, pool_size=2, max_overflow=0), security=security)


def _with_runtime(settings: Settings, work: Callable[[Runtime], Awaitable[T]]) -> T:
    async def main() -> T:
        runtime = Runtime.from_settings(settings)
        FakeProvider().install(runtime.plugins)
        try:
            return await work(runtime)
        finally:
            await runtime.close()

    return asyncio.run(main())


def _create_accounts(settings: Settings, count: int) -> dict[int, str]:
    """``count`` accounts of a new tenant, sealed under the settings' current key: {id: api key}."""

    async def work(runtime: Runtime) -> dict[int, str]:
        created = {}
        async with runtime.database.control_session() as session:
            tenant, _ = await runtime.registry.create(session, unique_slug("rot"), "Rotation")
            service = ProviderAccountService(
                ProviderAccountRepository(session, tenant.id),
                plugins=runtime.plugins,
                vault=AccountVault.from_settings(runtime.settings),
            )
            for number in range(count):
                api_key = f"good_{tenant.slug}_{number}"
                request = ProviderAccountCreate(
                    provider="fake", mode="live", credentials={"api_key": api_key}, webhook_secret=f"whsec_{number}_x"
                )
                created[(await service.create(request)).id] = api_key
        return created

    return _with_runtime(settings, work)


def _key_ids(settings: Settings) -> dict[str, int]:
    async def work(runtime: Runtime) -> dict[str, int]:
        async with runtime.database.control_session() as session:
            rows = await session.execute(
                text("SELECT credentials_key_id, count(*) FROM control.provider_accounts GROUP BY 1")
            )
            return {str(key_id): int(count) for key_id, count in rows.all()}

    return _with_runtime(settings, work)


def _resolved_keys(settings: Settings, ids: list[int]) -> dict[int, Any]:
    """What each account's adapter gets: its api key and webhook secret, or the error opening it."""

    async def work(runtime: Runtime) -> dict[int, Any]:
        source = DatabaseAccountSource(runtime)
        found: dict[int, Any] = {}
        for account_id in ids:
            try:
                resolved = await source.account(account_id)
            except CredentialsUnavailableError:
                found[account_id] = "unreadable"
                continue
            assert resolved is not None
            context = resolved.adapter.context  # type: ignore[attr-defined]
            assert isinstance(context.credentials, FakeCredentials)
            found[account_id] = context.credentials.api_key
        return found

    return _with_runtime(settings, work)


def _rotate_cli(monkeypatch: pytest.MonkeyPatch, settings: Settings, *args: str) -> Result:
    monkeypatch.setenv("BILLPLANE_DATABASE_URL", settings.database.url)
    monkeypatch.setenv("BILLPLANE_SECRET_KEY", SECRET_KEY)
    if settings.security.encryption_keys:
        monkeypatch.setenv("BILLPLANE_ENCRYPTION_KEYS", settings.security.encryption_keys)
    else:
        monkeypatch.delenv("BILLPLANE_ENCRYPTION_KEYS", raising=False)
    return CliRunner().invoke(cli, ["secrets", "rotate", *args], catch_exceptions=False)


def test_rotation_moves_every_account_to_the_current_key_and_frees_the_old_ones(
    own_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    derived_only, old, rotating, new_only = (
        _settings(own_database),
        _settings(own_database, "k1"),
        _settings(own_database, "k2", "k1"),
        _settings(own_database, "k2"),
    )
    sealed_by_k1 = _create_accounts(old, 2) | _create_accounts(old, 1)
    accounts = _create_accounts(derived_only, 1) | sealed_by_k1
    assert _key_ids(old) == {"s0": 1, "k1": 3}
    assert set(_resolved_keys(new_only, list(sealed_by_k1)).values()) == {"unreadable"}  # k1 is needed yet

    first = _rotate_cli(monkeypatch, rotating)
    assert first.exit_code == 0, first.output
    assert "current key k2: re-encrypted 4 account(s) (3 from k1, 1 from s0), 0 already current, 0 failed" in (
        first.output
    )
    again = _rotate_cli(monkeypatch, rotating)
    assert "re-encrypted 0 account(s), 4 already current, 0 failed" in again.output

    assert _key_ids(new_only) == {"k2": 4}
    assert _resolved_keys(new_only, list(accounts)) == accounts  # k1 removed: everything still opens
    assert set(_resolved_keys(old, list(accounts)).values()) == {"unreadable"}


def test_an_interrupted_rotation_resumes_and_unreadable_accounts_are_reported(
    own_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, rotating = _settings(own_database, "k2"), _settings(own_database, "k3", "k2")
    accounts = _create_accounts(old, 3)
    stranded = _create_accounts(_settings(own_database, "kx"), 1)  # its key is about to be lost

    class CrashError(Exception):
        pass

    def crash(_done: int) -> None:
        raise CrashError

    async def interrupted(runtime: Runtime) -> None:
        with pytest.raises(CrashError):
            await rotate(runtime.database, AccountVault.from_settings(runtime.settings), batch_size=2, on_batch=crash)

    _with_runtime(rotating, interrupted)
    assert _key_ids(rotating) == {"k3": 2, "k2": 1, "kx": 1}  # the first batch committed, the rest waits

    resumed = _rotate_cli(monkeypatch, rotating, "--batch-size", "2")
    assert resumed.exit_code == 1
    assert "re-encrypted 1 account(s) (1 from k2), 2 already current, 1 failed" in resumed.output
    [stranded_id] = stranded
    assert f"FAILED account {stranded_id}: provider account {stranded_id}: key 'kx' is not in" in resumed.stderr
    assert _key_ids(rotating) == {"k3": 3, "kx": 1}
    assert _resolved_keys(_settings(own_database, "k3"), list(accounts)) == accounts

    recovered = _rotate_cli(monkeypatch, _settings(own_database, "k3", "kx"))  # the lost key found again
    assert recovered.exit_code == 0, recovered.output
    assert "re-encrypted 1 account(s) (1 from kx), 3 already current, 0 failed" in recovered.output


def test_generate_key_prints_an_entry_for_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(cli, ["secrets", "generate-key", "2026_11"])
    assert result.exit_code == 0
    key_id, _, material = result.output.strip().partition(":")
    assert key_id == "2026_11"
    assert len(base64.b64decode(material)) == 32
    refused = CliRunner().invoke(cli, ["secrets", "generate-key", "s0"])
    assert refused.exit_code != 0


# Outbound webhook endpoints: their signing secrets are sealed in each tenant's schema.


def _create_endpoints(settings: Settings, count: int, url: str) -> tuple[CreatedTenant, dict[int, str]]:
    """A new tenant with ``count`` endpoints sealed under the settings' current key: {id: secret}."""

    async def work(runtime: Runtime) -> tuple[CreatedTenant, dict[int, str]]:
        async with runtime.database.control_session() as session:
            row, key = await runtime.registry.create(session, unique_slug("rot"), "Rotation")
            tenant = CreatedTenant(row.id, row.slug, key.key, 0)
        created = {}
        async with runtime.database.tenant_session(tenant.schema) as session:
            service = EndpointService(session, tenant.id, EndpointVault.from_settings(runtime.settings), FAST)
            for _ in range(count):
                endpoint, secret = await service.create(WebhookEndpointCreate(url=url, enabled_events=["invoice.*"]))
                created[endpoint.id] = secret
        return tenant, created

    return _with_runtime(settings, work)


def _endpoint_key_ids(settings: Settings, *tenants: CreatedTenant) -> dict[str, int]:
    async def work(runtime: Runtime) -> dict[str, int]:
        found: Counter[str] = Counter()
        for tenant in tenants:
            async with runtime.database.tenant_session(tenant.schema) as session:
                found.update(await session.scalars(select(WebhookEndpoint.secret_key_id)))
        return dict(found)

    return _with_runtime(settings, work)


def _deliver_one_event(settings: Settings, tenant: CreatedTenant) -> list[str]:
    async def work(runtime: Runtime) -> list[str]:
        await emit_event(runtime, tenant, "invoice.paid", 1, amount_paid=100, currency="USD")
        return await drain(runtime, tenant, FAST)

    return _with_runtime(settings, work)


def test_rotation_reseals_webhook_endpoint_secrets_and_deliveries_keep_their_signature(
    own_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, rotating, new_only = (
        _settings(own_database, "k1"),
        _settings(own_database, "k2", "k1"),
        _settings(own_database, "k2"),
    )
    with receiver() as hooks:
        first, first_secrets = _create_endpoints(old, 2, hooks.url)
        second, second_secrets = _create_endpoints(_settings(own_database), 1, hooks.url)  # sealed by s0
        _with_runtime(new_only, _suspend(second))  # a suspended tenant's endpoints must still open later
        assert _endpoint_key_ids(old, first, second) == {"k1": 2, "s0": 1}

        result = _rotate_cli(monkeypatch, rotating)
        assert result.exit_code == 0, result.output
        assert (
            "current key k2: re-encrypted 3 webhook endpoint(s) (2 from k1, 1 from s0), 0 already current, 0 failed"
            in result.output
        )
        again = _rotate_cli(monkeypatch, rotating)
        assert "re-encrypted 0 webhook endpoint(s), 3 already current, 0 failed" in again.output
        assert _endpoint_key_ids(new_only, first, second) == {"k2": 3}

        # k1 is gone from the ring: every delivery is still signed with the secret the tenant holds.
        assert _deliver_one_event(new_only, first) == ["delivered", "delivered"]
        assert _deliver_one_event(new_only, second) == ["delivered"]
    by_secret = {
        secret: [got for got in hooks.received if verify(secret, got.headers, got.body)]
        for secret in [*first_secrets.values(), *second_secrets.values()]
    }
    assert all(len(verified) == 1 for verified in by_secret.values()), by_secret
    assert len(hooks.received) == 3


def _suspend(tenant: CreatedTenant) -> Callable[[Runtime], Awaitable[None]]:
    async def work(runtime: Runtime) -> None:
        async with runtime.database.control_session() as session:
            row = await runtime.registry.get(session, tenant.slug)
            assert row is not None
            await runtime.registry.set_status(session, row, "suspended")

    return work


def test_an_interrupted_endpoint_rotation_resumes_and_unreadable_endpoints_are_reported(
    own_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rotating = _settings(own_database, "k3", "k2")
    tenant, secrets_by_id = _create_endpoints(_settings(own_database, "k2"), 3, "https://hooks.example.com/in")
    stranded, _ = _create_endpoints(_settings(own_database, "kx"), 1, "https://hooks.example.com/in")

    class CrashError(Exception):
        pass

    def crash(_done: int) -> None:
        raise CrashError

    async def interrupted(runtime: Runtime) -> None:
        vault = EndpointVault.from_settings(runtime.settings)
        with pytest.raises(CrashError):
            await rotate_endpoints(runtime.database, vault, batch_size=2, on_batch=crash)

    _with_runtime(rotating, interrupted)
    assert _endpoint_key_ids(rotating, tenant) == {"k3": 2, "k2": 1}  # the first batch committed

    resumed = _rotate_cli(monkeypatch, rotating, "--batch-size", "2")
    assert resumed.exit_code == 1
    assert "re-encrypted 1 webhook endpoint(s) (1 from k2), 2 already current, 1 failed" in resumed.output
    [stranded_id] = _endpoint_ids(rotating, stranded)
    assert f"FAILED webhook endpoint {stranded_id} of tenant {stranded.slug}: " in resumed.stderr
    assert "key 'kx' is not in" in resumed.stderr
    assert _endpoint_key_ids(rotating, tenant, stranded) == {"k3": 3, "kx": 1}
    assert _opened(_settings(own_database, "k3"), tenant) == secrets_by_id

    recovered = _rotate_cli(monkeypatch, _settings(own_database, "k3", "kx"))
    assert recovered.exit_code == 0, recovered.output
    assert "re-encrypted 1 webhook endpoint(s) (1 from kx), 3 already current, 0 failed" in recovered.output


def _endpoint_ids(settings: Settings, tenant: CreatedTenant) -> list[int]:
    async def work(runtime: Runtime) -> list[int]:
        async with runtime.database.tenant_session(tenant.schema) as session:
            return list(await session.scalars(select(WebhookEndpoint.id).order_by(WebhookEndpoint.id)))

    return _with_runtime(settings, work)


def _opened(settings: Settings, tenant: CreatedTenant) -> dict[int, str]:
    """Each endpoint's secret as the deliverer opens it with these settings' keys."""

    async def work(runtime: Runtime) -> dict[int, str]:
        vault = EndpointVault.from_settings(runtime.settings)
        async with runtime.database.tenant_session(tenant.schema) as session:
            rows = (await session.scalars(select(WebhookEndpoint))).all()
            return {row.id: vault.open(tenant.id, row.id, row.secret_key_id, row.secret_ciphertext) for row in rows}

    return _with_runtime(settings, work)


def test_a_tenant_whose_endpoints_cannot_be_read_fails_the_rotation(
    own_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Skipped silently, its endpoints would stay sealed under the old key, and the operator, told
    # "0 failed", would remove it: their secrets could be opened no more.
    rotating = _settings(own_database, "k3", "k2")
    tenant, _ = _create_endpoints(_settings(own_database, "k2"), 1, "https://hooks.example.com/in")

    async def break_it(runtime: Runtime) -> None:
        async with runtime.database.transaction() as connection:
            await connection.execute(
                text(f'ALTER TABLE "{tenant.schema}".webhook_endpoints RENAME COLUMN secret_key_id TO key_id_was')
            )

    _with_runtime(rotating, break_it)
    result = _rotate_cli(monkeypatch, rotating)
    assert result.exit_code == 1, result.output
    assert f"FAILED tenant {tenant.slug}: its webhook endpoints could not be read" in result.stderr
