"""/v1/provider-accounts: create, read, change, check and delete, and the input it refuses."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from billplane.runtime import Runtime
from tests.conftest import CreatedTenant, create_tenant
from tests.platform.billing_seed import insert, payment
from tests.platform.provider_accounts_fake import FakeProvider, good_body

Client = AsyncTestClient[Litestar]
GOOD_KEY = "good_0123456789abcdef"
PATH = "/v1/provider-accounts"


@pytest.fixture
def fake(app: Litestar) -> FakeProvider:
    return FakeProvider().install(app)


async def _account(client: Client, tenant: CreatedTenant, **fields: Any) -> dict[str, Any]:
    response = await client.post(PATH, json=good_body(**fields), headers=tenant.headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def _ids(client: Client, tenant: CreatedTenant, **params: str) -> list[int]:
    response = await client.get(PATH, params=params, headers=tenant.headers)
    assert response.status_code == 200, response.text
    return [row["id"] for row in response.json()["data"]]


async def test_create_get_update_delete(client: Client, admin_headers: dict[str, str], fake: FakeProvider) -> None:
    tenant = await create_tenant(client, admin_headers)
    created = await _account(client, tenant, label="Main", webhook_secret="whsec_abcdefghijklmnop")
    assert created["provider"] == "fake"
    assert created["mode"] == "test"
    assert created["label"] == "Main"
    assert created["is_default"] is True  # the tenant's first fake account
    assert created["credentials_hint"] == {"api_key": "...cdef"}
    assert created["webhook_secret_set"] is True
    assert created["webhook_secret_hint"] == "...mnop"
    assert created["status"] == "active"
    assert created["last_checked_at"] is not None
    assert created["last_check_error"] is None
    assert "credentials" not in created
    assert "webhook_secret" not in created
    # The provider saw the credentials as its own type, with the account's own identity.
    context = fake.contexts[-1]
    assert (context.tenant_id, context.account_id, context.mode) == (tenant.id, created["id"], "test")
    assert context.webhook_secret == "whsec_abcdefghijklmnop"

    path = f"{PATH}/{created['id']}"
    assert (await client.get(path, headers=tenant.headers)).json() == created
    patched = await client.patch(path, json={"label": None, "webhook_secret": None}, headers=tenant.headers)
    assert patched.status_code == 200, patched.text
    assert patched.json()["label"] is None
    assert patched.json()["webhook_secret_set"] is False
    assert patched.json()["webhook_secret_hint"] is None
    assert patched.json()["credentials_hint"] == {"api_key": "...cdef"}
    assert await _ids(client, tenant) == [created["id"]]

    assert (await client.delete(path, headers=tenant.headers)).status_code == 204
    assert (await client.get(path, headers=tenant.headers)).status_code == 404
    assert (await client.delete(path, headers=tenant.headers)).status_code == 404
    assert await _ids(client, tenant) == []


async def test_a_deleted_account_keeps_no_secret(
    client: Client, admin_headers: dict[str, str], fake: FakeProvider, runtime: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers)
    account = await _account(client, tenant, webhook_secret="whsec_abcdefghijklmnop")
    # A rotation: the replaced secret is kept (still accepted for a day) until the delete.
    rotated = await client.patch(
        f"{PATH}/{account['id']}", json={"webhook_secret": "whsec_qrstuvwxyz012345"}, headers=tenant.headers
    )
    assert rotated.status_code == 200, rotated.text
    assert (await client.delete(f"{PATH}/{account['id']}", headers=tenant.headers)).status_code == 204
    async with runtime.database.control_session() as session:
        row = (
            await session.execute(
                text(
                    "SELECT status, deleted_at IS NOT NULL, credentials_ciphertext, webhook_secret_ciphertext, "
                    "previous_webhook_secret_ciphertext, previous_webhook_secret_until, is_default "
                    "FROM control.provider_accounts WHERE id = :id"
                ),
                {"id": account["id"]},
            )
        ).one()
    assert tuple(row) == ("deleted", True, None, None, None, None, False)


async def test_first_account_of_a_provider_is_the_default(
    client: Client, admin_headers: dict[str, str], fake: FakeProvider
) -> None:
    tenant = await create_tenant(client, admin_headers)
    first = await _account(client, tenant)
    second = await _account(client, tenant, mode="live")
    assert (first["is_default"], second["is_default"]) == (True, False)

    other = await create_tenant(client, admin_headers)
    opted_out = await _account(client, other, is_default=False)
    assert opted_out["is_default"] is False
    assert (await _account(client, other))["is_default"] is False  # not the first any more


async def test_a_second_default_is_409_and_patch_moves_the_default(
    client: Client, admin_headers: dict[str, str], fake: FakeProvider
) -> None:
    tenant = await create_tenant(client, admin_headers)
    first = await _account(client, tenant)
    clash = await client.post(PATH, json=good_body(is_default=True), headers=tenant.headers)
    assert clash.status_code == 409, clash.text
    assert await _ids(client, tenant) == [first["id"]]

    second = await _account(client, tenant, mode="live")
    moved = await client.patch(f"{PATH}/{second['id']}", json={"is_default": True}, headers=tenant.headers)
    assert moved.status_code == 200, moved.text
    assert moved.json()["is_default"] is True
    assert (await client.get(f"{PATH}/{first['id']}", headers=tenant.headers)).json()["is_default"] is False
    unset = await client.patch(f"{PATH}/{second['id']}", json={"is_default": False}, headers=tenant.headers)
    assert unset.json()["is_default"] is False
    # Another tenant's default is its own business.
    assert (await _account(client, await create_tenant(client, admin_headers)))["is_default"] is True


async def test_an_unknown_provider_names_the_installed_ones(
    client: Client, admin_headers: dict[str, str], fake: FakeProvider
) -> None:
    tenant = await create_tenant(client, admin_headers)
    response = await client.post(PATH, json=good_body(provider="nope"), headers=tenant.headers)
    assert response.status_code == 422
    error = response.json()["errors"][0]
    assert error["field"] == "provider"
    assert "fake" in error["message"]
    assert "nope" in error["message"]


@pytest.mark.parametrize(
    ("credentials", "field"),
    [
        ({}, "credentials.api_key"),
        ({"api_key": 12345678}, "credentials.api_key"),
        ({"api_key": "good_"}, "credentials.api_key"),  # shorter than the provider's schema allows
        ({"api_key": GOOD_KEY, "extra": "x"}, "credentials.extra"),
        ({"api_key": GOOD_KEY, "region": "good_secret_in_the_wrong_field"}, "credentials.region"),
    ],
)
async def test_credentials_are_validated_against_the_provider_schema(
    client: Client, admin_headers: dict[str, str], fake: FakeProvider, credentials: dict[str, Any], field: str
) -> None:
    tenant = await create_tenant(client, admin_headers)
    response = await client.post(PATH, json=good_body(credentials=credentials), headers=tenant.headers)
    assert response.status_code == 422, response.text
    assert [error["field"] for error in response.json()["errors"]] == [field]
    assert "good_secret_in_the_wrong_field" not in response.text  # msgspec echoes enum values: scrubbed
    assert await _ids(client, tenant) == []
    assert fake.contexts == []  # refused before the provider was asked


async def test_credentials_the_provider_refuses_are_422_and_not_stored(
    client: Client, admin_headers: dict[str, str], fake: FakeProvider
) -> None:
    tenant = await create_tenant(client, admin_headers)
    response = await client.post(
        PATH, json=good_body(credentials={"api_key": "sk_wrong_0123456789"}), headers=tenant.headers
    )
    assert response.status_code == 422
    error = response.json()["errors"][0]
    assert error["field"] == "credentials"
    assert error["message"] == "no such key: [redacted]"  # the provider echoed the key; billplane did not
    assert "sk_wrong_0123456789" not in response.text
    assert await _ids(client, tenant) == []


async def test_a_provider_that_cannot_answer_is_503_and_nothing_is_stored(
    client: Client, admin_headers: dict[str, str], fake: FakeProvider
) -> None:
    tenant = await create_tenant(client, admin_headers)
    fake.down = True
    response = await client.post(PATH, json=good_body(), headers=tenant.headers)
    assert response.status_code == 503
    assert response.json()["code"] == "unavailable"
    assert response.headers["retry-after"] == "3"
    fake.down = False
    assert await _ids(client, tenant) == []


async def test_new_credentials_are_validated_and_checked_again(
    client: Client, admin_headers: dict[str, str], fake: FakeProvider
) -> None:
    tenant = await create_tenant(client, admin_headers)
    account = await _account(client, tenant, webhook_secret="whsec_kept_across_changes")
    path = f"{PATH}/{account['id']}"
    refused = await client.patch(path, json={"credentials": {"api_key": "bad_key_0000"}}, headers=tenant.headers)
    invalid = await client.patch(path, json={"credentials": {"apikey": GOOD_KEY}}, headers=tenant.headers)
    assert (refused.status_code, invalid.status_code) == (422, 422)
    assert invalid.json()["errors"][0]["field"] == "credentials.apikey"
    assert (await client.get(path, headers=tenant.headers)).json() == account  # unchanged

    changed = await client.patch(
        path, json={"credentials": {"api_key": "good_new_key_9876", "region": "us"}}, headers=tenant.headers
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["credentials_hint"] == {"api_key": "...9876"}
    assert changed.json()["webhook_secret_set"] is True
    checked_with = fake.contexts[-1]
    assert checked_with.credentials == fake.plugin().credentials_type(api_key="good_new_key_9876", region="us")
    assert checked_with.webhook_secret == "whsec_kept_across_changes"

    # A new webhook secret alone is not checked with the provider, and keeps the credentials.
    built = len(fake.contexts)
    secret = await client.patch(path, json={"webhook_secret": "whsec_second_one_1111"}, headers=tenant.headers)
    assert secret.json()["webhook_secret_hint"] == "...1111"
    assert len(fake.contexts) == built
    check = await client.post(f"{path}/check", headers=tenant.headers)
    assert check.json()["last_check_error"] is None
    assert fake.contexts[-1].webhook_secret == "whsec_second_one_1111"
    assert fake.contexts[-1].credentials == checked_with.credentials


async def test_check_records_the_outcome(client: Client, admin_headers: dict[str, str], fake: FakeProvider) -> None:
    tenant = await create_tenant(client, admin_headers)
    account = await _account(client, tenant)
    path = f"{PATH}/{account['id']}/check"

    accepted = await client.post(path, headers=tenant.headers)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["last_check_error"] is None
    assert accepted.json()["last_checked_at"] >= account["last_checked_at"]

    fake.accept = "better_"  # the provider has since revoked the key
    refused = await client.post(path, headers=tenant.headers)
    assert refused.status_code == 200
    assert refused.json()["last_check_error"] == "no such key: [redacted]"
    assert refused.json()["last_checked_at"] > accepted.json()["last_checked_at"]
    stored = await client.get(f"{PATH}/{account['id']}", headers=tenant.headers)
    assert stored.json()["last_check_error"] == "no such key: [redacted]"  # recorded, not just answered

    fake.down = True
    unavailable = await client.post(path, headers=tenant.headers)
    assert unavailable.status_code == 503
    after = (await client.get(f"{PATH}/{account['id']}", headers=tenant.headers)).json()
    assert after["last_checked_at"] == refused.json()["last_checked_at"]  # nothing recorded


async def test_deleting_an_account_used_by_a_live_subscription_is_409(
    client: Client, admin_headers: dict[str, str], fake: FakeProvider, runtime: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers)
    used, spare = await _account(client, tenant), await _account(client, tenant)
    async with runtime.database.tenant_session(tenant.schema) as session:
        customer = await insert(session, "customers", name="Ada")
        product = await insert(session, "products", name="API")
        flat = {"pricing_model": "flat", "amount": 1000, "currency": "USD", "billing_interval": "month"}
        plan = await insert(session, "plans", product_id=product, name="Basic", **flat)
        subscription = {"customer_id": customer, "plan_id": plan, "provider": "fake"}
        live = await insert(session, "subscriptions", status="past_due", provider_account_id=used["id"], **subscription)
        await insert(session, "subscriptions", status="canceled", provider_account_id=spare["id"], **subscription)

    blocked = await client.delete(f"{PATH}/{used['id']}", headers=tenant.headers)
    assert blocked.status_code == 409, blocked.text
    assert (await client.get(f"{PATH}/{used['id']}", headers=tenant.headers)).status_code == 200
    # A canceled subscription does not hold its account.
    assert (await client.delete(f"{PATH}/{spare['id']}", headers=tenant.headers)).status_code == 204

    async with runtime.database.tenant_session(tenant.schema) as session:
        await session.execute(text("UPDATE subscriptions SET status = 'canceled' WHERE id = :id"), {"id": live})
    assert (await client.delete(f"{PATH}/{used['id']}", headers=tenant.headers)).status_code == 204


async def test_deleting_an_account_with_a_payment_or_refund_still_pending_is_409(
    client: Client, admin_headers: dict[str, str], fake: FakeProvider, runtime: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers)
    charging, refunding = await _account(client, tenant), await _account(client, tenant)
    async with runtime.database.tenant_session(tenant.schema) as session:
        customer = await insert(session, "customers", name="Ada")
        pending = await payment(session, customer, "pending", 1000, provider="fake", provider_account_id=charging["id"])
        paid = await payment(session, customer, "succeeded", 1000, provider="fake", provider_account_id=refunding["id"])
        await insert(session, "refunds", payment_id=paid, amount=400, currency="USD", status="pending")

    for account in (charging, refunding):  # gone, the account could settle them no more
        blocked = await client.delete(f"{PATH}/{account['id']}", headers=tenant.headers)
        assert blocked.status_code == 409, blocked.text
        assert "pending" in blocked.json()["detail"]

    async with runtime.database.tenant_session(tenant.schema) as session:
        await session.execute(text("UPDATE payments SET status = 'failed' WHERE id = :id"), {"id": pending})
        await session.execute(text("UPDATE refunds SET status = 'succeeded'"))
    for account in (charging, refunding):
        assert (await client.delete(f"{PATH}/{account['id']}", headers=tenant.headers)).status_code == 204


async def test_list_pages_and_filters_by_provider(
    client: Client, admin_headers: dict[str, str], fake: FakeProvider, app: Litestar
) -> None:
    FakeProvider(name="other").install(app)
    tenant = await create_tenant(client, admin_headers)
    fakes = [(await _account(client, tenant))["id"] for _ in range(3)]
    others = [(await _account(client, tenant, provider="other"))["id"] for _ in range(2)]
    seen: list[int] = []
    cursor: str | None = None
    while True:
        page = (
            await client.get(
                PATH, params={"limit": "2"} | ({"cursor": cursor} if cursor else {}), headers=tenant.headers
            )
        ).json()
        seen += [row["id"] for row in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(fakes + others)
    assert await _ids(client, tenant, provider="other") == others
    assert await _ids(client, tenant, provider="fake") == fakes


async def test_ids_of_another_tenant_are_404_like_unknown_ids(
    client: Client, admin_headers: dict[str, str], fake: FakeProvider, runtime: Runtime
) -> None:
    mine, theirs = await create_tenant(client, admin_headers), await create_tenant(client, admin_headers)
    await _account(client, mine)
    foreign = await _account(client, theirs, label=theirs.slug, webhook_secret="whsec_theirs_000000")

    async def their_rows() -> list[str]:
        async with runtime.database.control_session() as session:
            rows = await session.execute(
                text("SELECT to_jsonb(a)::text FROM control.provider_accounts a WHERE tenant_id = :t ORDER BY id"),
                {"t": theirs.id},
            )
            return list(rows.scalars())

    before = await their_rows()
    path = f"{PATH}/{foreign['id']}"
    attempts = [
        await client.get(path, headers=mine.headers),
        await client.patch(path, json={"is_default": False, "label": "mine now"}, headers=mine.headers),
        await client.patch(path, json={"credentials": {"api_key": GOOD_KEY}}, headers=mine.headers),
        await client.post(f"{path}/check", headers=mine.headers),
        await client.delete(path, headers=mine.headers),
    ]
    unknown = await client.get(f"{PATH}/999999999", headers=mine.headers)
    for response in attempts:
        assert response.status_code == 404, response.text
        assert response.json().keys() == unknown.json().keys()
        assert theirs.slug not in response.text
    assert theirs.slug not in (await client.get(PATH, headers=mine.headers)).text
    assert await their_rows() == before


async def test_ids_beyond_bigint_are_404(client: Client, admin_headers: dict[str, str]) -> None:
    tenant = await create_tenant(client, admin_headers)
    assert (await client.get(f"{PATH}/{2**63}", headers=tenant.headers)).status_code == 404
