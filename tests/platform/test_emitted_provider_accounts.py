"""Provider accounts: every change the API makes is an event, whose data is the API's masked view.

No event holds a credential or a webhook secret, only their hints; a request refused writes none.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from billplane.cli.dev import SANDBOX_DEMO_API_KEY, WEBHOOK_ENTRY, ensure_sandbox_account
from billplane.cli.devenv import DevEnvironment
from billplane.plugins.host import PluginHost
from billplane.runtime import Runtime
from tests.conftest import CreatedTenant, create_tenant
from tests.platform.provider_accounts_fake import FakeProvider, good_body
from tests.platform.test_emitted_customers_and_catalog import listed, shown, types_of

Client = AsyncTestClient[Litestar]
PATH = "/v1/provider-accounts"
KEY = "good_first_key_0000aaaa"
NEW_KEY = "good_second_key_1111bbbb"
OTHER_KEY = "good_other_key_6666ffff"
REFUSED_KEY = "sk_refused_key_2222cccc"
WEBHOOK_SECRET = "whsec_first_secret_4444dddd"
NEW_WEBHOOK_SECRET = "whsec_second_secret_5555eeee"
SECRETS = (KEY, NEW_KEY, OTHER_KEY, REFUSED_KEY, WEBHOOK_SECRET, NEW_WEBHOOK_SECRET)


@pytest.fixture
def fake(app: Litestar) -> FakeProvider:
    return FakeProvider().install(app)


async def _created(client: Client, tenant: CreatedTenant, **fields: Any) -> dict[str, Any]:
    response = await client.post(PATH, json=good_body(**fields), headers=tenant.headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def _stored_data(runtime: Runtime, tenant: CreatedTenant) -> list[str]:
    """Every event's data as PostgreSQL stores it, as text."""
    async with runtime.database.tenant_session(tenant.schema) as session:
        return list((await session.execute(text("SELECT data::text FROM events ORDER BY id"))).scalars())


async def test_an_accounts_changes_are_events_with_the_apis_masked_view_and_no_secret(
    client: Client, admin_headers: dict[str, str], fake: FakeProvider, runtime: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers, "emit")
    first = await _created(client, tenant, credentials={"api_key": KEY}, webhook_secret=WEBHOOK_SECRET, label="A")
    path = f"{PATH}/{first['id']}"
    after_create = await shown(client, tenant, path)
    second = await _created(client, tenant, credentials={"api_key": OTHER_KEY}, is_default=False)
    other = f"{PATH}/{second['id']}"

    rotated = await client.patch(
        path,
        json={"credentials": {"api_key": NEW_KEY}, "webhook_secret": NEW_WEBHOOK_SECRET, "label": "B"},
        headers=tenant.headers,
    )
    assert rotated.status_code == 200, rotated.text
    after_rotate = await shown(client, tenant, path)
    # The second becomes the default: the first stops being it, and that is its change too.
    promoted = await client.patch(other, json={"is_default": True}, headers=tenant.headers)
    assert promoted.status_code == 200, promoted.text
    after_demote, after_promote = await shown(client, tenant, path), await shown(client, tenant, other)
    assert (after_demote["is_default"], after_promote["is_default"]) == (False, True)
    unchanged = await client.patch(path, json={"label": "B", "is_default": False}, headers=tenant.headers)
    assert unchanged.status_code == 200
    fake.accept = "never_"  # the provider now refuses its key: the check records that
    checked = await client.post(f"{path}/check", headers=tenant.headers)
    assert checked.status_code == 200
    after_check = await shown(client, tenant, path)
    assert after_check["last_check_error"] is not None
    assert (await client.delete(path, headers=tenant.headers)).status_code == 204

    events = await listed(client, tenant, "provider_account", first["id"])
    assert types_of(events) == [
        "provider_account.created",
        "provider_account.updated",
        "provider_account.updated",
        "provider_account.updated",
        "provider_account.deleted",
    ]
    expected = [after_create, after_rotate, after_demote, after_check, after_check]
    assert [event["data"] for event in events] == expected
    assert after_create == first
    assert after_rotate["webhook_secret_hint"] == "...eeee"  # the hint changed, the secret never shows
    promoted_events = await listed(client, tenant, "provider_account", second["id"])
    assert types_of(promoted_events) == ["provider_account.created", "provider_account.updated"]
    assert promoted_events[1]["data"] == after_promote

    stored = await _stored_data(runtime, tenant)
    assert len(stored) == 7  # every event this tenant has, each checked
    for data in stored:
        assert [secret for secret in SECRETS if secret in data] == []
        assert 'credentials"' not in data  # hints only: credentials_hint, never the credentials


async def test_the_demo_tenants_sandbox_account_records_the_same_event_as_the_api(
    client: Client, admin_headers: dict[str, str], runtime: Runtime, tmp_path: Path
) -> None:
    tenant = await create_tenant(client, admin_headers, "emit")
    runtime.plugins = PluginHost()  # a sandbox that accepts the demo's key
    FakeProvider(name="sandbox", accept="sk_sandbox_").install(runtime.plugins)
    environment = DevEnvironment(tmp_path)

    account_id = await ensure_sandbox_account(runtime, environment, tenant.id, tenant.schema)

    assert account_id is not None
    [created] = await listed(client, tenant, "provider_account", account_id)
    assert (created["type"], created["data"]) == (
        "provider_account.created",
        await shown(client, tenant, f"{PATH}/{account_id}"),
    )
    [stored] = await _stored_data(runtime, tenant)
    assert [secret for secret in (SANDBOX_DEMO_API_KEY, environment.secrets()[WEBHOOK_ENTRY]) if secret in stored] == []
    assert await ensure_sandbox_account(runtime, environment, tenant.id, tenant.schema) is None  # made once
    assert len(await _stored_data(runtime, tenant)) == 1


async def test_refused_account_requests_write_no_event(
    client: Client, admin_headers: dict[str, str], fake: FakeProvider, runtime: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers, "emit")
    account = await _created(client, tenant, credentials={"api_key": KEY})
    path = f"{PATH}/{account['id']}"
    before = await listed(client, tenant, "provider_account")
    assert types_of(before) == ["provider_account.created"]

    refused = [
        await client.post(PATH, json=good_body(credentials={"api_key": REFUSED_KEY}), headers=tenant.headers),
        await client.post(PATH, json=good_body(provider="nowhere"), headers=tenant.headers),
        await client.post(PATH, json=good_body(is_default=True), headers=tenant.headers),  # a default exists
        await client.patch(path, json={"credentials": {"api_key": REFUSED_KEY}}, headers=tenant.headers),
        await client.delete(f"{PATH}/999999", headers=tenant.headers),
    ]
    fake.down = True  # the provider does not answer: nothing is recorded
    refused.append(await client.post(f"{path}/check", headers=tenant.headers))

    assert [response.status_code for response in refused] == [422, 422, 409, 422, 404, 503]
    assert await listed(client, tenant, "provider_account") == before
    for data in await _stored_data(runtime, tenant):
        assert [secret for secret in SECRETS if secret in data] == []
