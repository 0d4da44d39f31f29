"""Provider credentials never leave billplane in clear, and a ciphertext opens only where it was sealed."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from billplane.provider_accounts.models import ProviderAccount
from billplane.provider_accounts.schemas import ProviderAccountCreate, ProviderAccountUpdate
from billplane.provider_accounts.source import DatabaseAccountSource
from billplane.provider_accounts.vault import AccountVault, CredentialsUnavailableError, OpenedSecrets
from billplane.runtime import Runtime
from billplane.settings import Settings
from tests.conftest import CreatedTenant, create_tenant
from tests.platform.provider_accounts_fake import FakeProvider, good_body

Client = AsyncTestClient[Litestar]
PATH = "/v1/provider-accounts"
KEY = "good_first_key_0000aaaa"
NEW_KEY = "good_second_key_1111bbbb"
REFUSED_KEY = "sk_refused_key_2222cccc"
ECHOED = "good_pasted_in_region_3333"
WEBHOOK_SECRET = "whsec_first_secret_4444dddd"
NEW_WEBHOOK_SECRET = "whsec_second_secret_5555eeee"
SECRETS = (KEY, NEW_KEY, REFUSED_KEY, ECHOED, WEBHOOK_SECRET, NEW_WEBHOOK_SECRET)


@pytest.fixture
def fake(app: Litestar, runtime: Runtime) -> FakeProvider:
    provider = FakeProvider().install(app)
    return provider.install(runtime.plugins)


def _leaks(text_or_bytes: str | bytes) -> list[str]:
    haystack = text_or_bytes if isinstance(text_or_bytes, bytes) else text_or_bytes.encode()
    return [secret for secret in SECRETS if secret.encode() in haystack]


async def _exercise(client: Client, tenant: CreatedTenant, fake: FakeProvider) -> list[str]:
    """Every way a secret goes in, successful or not; returns every response body."""
    idempotent = tenant.headers | {"Idempotency-Key": "create-the-account"}
    body = good_body(credentials={"api_key": KEY}, webhook_secret=WEBHOOK_SECRET)
    created = await client.post(PATH, json=body, headers=idempotent)
    assert created.status_code == 201, created.text
    replayed = await client.post(PATH, json=body, headers=idempotent)
    assert replayed.headers.get("idempotent-replayed") == "true"
    path = f"{PATH}/{created.json()['id']}"
    responses = [
        created,
        replayed,
        await client.post(PATH, json=good_body(credentials={"api_key": REFUSED_KEY}), headers=tenant.headers),
        await client.post(PATH, json=good_body(credentials={"api_key": KEY, "region": ECHOED}), headers=tenant.headers),
        await client.patch(path, json={"credentials": {"api_key": REFUSED_KEY}}, headers=tenant.headers),
        await client.patch(
            path,
            json={"credentials": {"api_key": NEW_KEY}, "webhook_secret": NEW_WEBHOOK_SECRET},
            headers=tenant.headers,
        ),
        await client.post(f"{path}/check", headers=tenant.headers),
        await client.get(path, headers=tenant.headers),
        await client.get(PATH, headers=tenant.headers),
    ]
    fake.accept = "never_"
    responses.append(await client.post(f"{path}/check", headers=tenant.headers))
    assert [response.status_code for response in responses] == [201, 201, 422, 422, 422, 200, 200, 200, 200, 200]
    return [response.text for response in responses]


async def test_secrets_appear_in_no_response_log_row_or_stored_response(
    client: Client,
    admin_headers: dict[str, str],
    fake: FakeProvider,
    runtime: Runtime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tenant = await create_tenant(client, admin_headers)
    caplog.set_level(logging.DEBUG)  # everything, and SQLAlchemy's statements with their parameters:
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")  # (it sets its own loggers to WARNING)
    bodies = await _exercise(client, tenant, fake)

    assert "provider_accounts" in caplog.text, "the log must have seen the SQL for this test to mean anything"
    assert _leaks(caplog.text) == []
    for body in bodies:
        assert _leaks(body) == []

    async with runtime.database.transaction() as connection:
        accounts = (
            await connection.execute(
                text("SELECT a.*, to_jsonb(a)::text AS json FROM control.provider_accounts a WHERE tenant_id = :t"),
                {"t": tenant.id},
            )
        ).mappings()
        for row in accounts:
            assert _leaks(row["json"]) == []
            assert _leaks(row["credentials_ciphertext"]) == []
            assert _leaks(row["webhook_secret_ciphertext"]) == []
        stored = (
            await connection.execute(
                text(f'SELECT key, to_jsonb(k)::text, response_body FROM "{tenant.schema}".idempotency_keys k')
            )
        ).all()
    assert len(stored) == 1
    key, row_json, sealed = stored[0]
    assert _leaks(row_json) == []
    assert _leaks(runtime.sealer.open(tenant.schema, key, sealed)) == []  # the stored response, opened


async def test_a_plugin_failing_outside_the_contract_is_logged_without_its_message(
    client: Client, admin_headers: dict[str, str], fake: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    tenant = await create_tenant(client, admin_headers)
    fake.broken = True
    response = await client.post(PATH, json=good_body(credentials={"api_key": KEY}), headers=tenant.headers)
    assert response.status_code == 422
    assert response.json()["errors"][0] == {
        "field": "credentials",
        "source": "body",
        "message": "the fake provider failed while checking the credentials (RuntimeError)",
    }
    assert "the fake provider's credentials check raised RuntimeError" in caplog.text
    assert _leaks(caplog.text) == []
    assert (await client.get(PATH, headers=tenant.headers)).json()["data"] == []


def test_objects_holding_secrets_do_not_print_them() -> None:
    create = ProviderAccountCreate(
        provider="fake", mode="live", credentials={"api_key": KEY}, webhook_secret=WEBHOOK_SECRET
    )
    update = ProviderAccountUpdate(credentials={"api_key": NEW_KEY}, webhook_secret=NEW_WEBHOOK_SECRET)
    opened = OpenedSecrets(credentials={"api_key": KEY}, webhook_secret=WEBHOOK_SECRET)
    for value in (create, update, opened):
        assert _leaks(repr(value)) == [], repr(value)
        assert _leaks(str(value)) == []


async def _sealed(runtime: Runtime, account_id: int) -> dict[str, Any]:
    async with runtime.database.transaction() as connection:
        row = await connection.execute(
            text(
                "SELECT credentials_ciphertext, credentials_key_id, webhook_secret_ciphertext "
                "FROM control.provider_accounts WHERE id = :id"
            ),
            {"id": account_id},
        )
        return dict(row.mappings().one())


async def _overwrite(runtime: Runtime, account_id: int, **values: object) -> None:
    assignments = ", ".join(f"{column} = :{column}" for column in values)
    async with runtime.database.transaction() as connection:
        await connection.execute(
            text(f"UPDATE control.provider_accounts SET {assignments} WHERE id = :id"), {"id": account_id, **values}
        )


async def test_a_ciphertext_opens_only_for_its_tenant_account_and_purpose(
    client: Client, admin_headers: dict[str, str], fake: FakeProvider, runtime: Runtime
) -> None:
    mine, theirs = await create_tenant(client, admin_headers), await create_tenant(client, admin_headers)
    body = good_body(credentials={"api_key": KEY}, webhook_secret=WEBHOOK_SECRET)
    ids = {}
    for name, tenant in [("mine", mine), ("theirs", theirs), ("mine_too", mine)]:
        response = await client.post(PATH, json=body | {"is_default": False}, headers=tenant.headers)
        assert response.status_code == 201, response.text
        ids[name] = response.json()["id"]
    source = DatabaseAccountSource(runtime)
    assert await source.account(ids["theirs"]) is not None  # opens where it was sealed

    stolen = await _sealed(runtime, ids["mine"])
    await _overwrite(runtime, ids["theirs"], **stolen)  # the same key, another tenant's row
    with pytest.raises(CredentialsUnavailableError, match="does not open"):
        await source.account(ids["theirs"])
    checked = await client.post(f"{PATH}/{ids['theirs']}/check", headers=theirs.headers)
    assert checked.status_code == 200
    assert "cannot be read" in checked.json()["last_check_error"]

    await _overwrite(runtime, ids["mine_too"], **stolen)  # same tenant, another account
    with pytest.raises(CredentialsUnavailableError):
        await source.account(ids["mine_too"])

    swapped = {"credentials_ciphertext": stolen["webhook_secret_ciphertext"]}  # another purpose
    await _overwrite(runtime, ids["mine"], **swapped)
    with pytest.raises(CredentialsUnavailableError):
        await source.account(ids["mine"])


def test_secrets_sealed_under_a_key_no_longer_configured_are_unavailable(settings: Settings) -> None:
    vault = AccountVault.from_settings(settings)
    assert vault.current_key_id == "s0"  # no BILLPLANE_ENCRYPTION_KEYS in the test settings
    row = ProviderAccount(id=7, tenant_id=3, provider="fake", mode="test")
    vault.seal_into(row, OpenedSecrets(credentials={"api_key": KEY}, webhook_secret=None))
    assert vault.open(row).credentials == {"api_key": KEY}
    row.credentials_key_id = "k_removed"
    with pytest.raises(CredentialsUnavailableError, match="'k_removed' is not in BILLPLANE_ENCRYPTION_KEYS"):
        vault.open(row)
