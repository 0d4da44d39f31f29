"""A tenant's request that writes a control row naming the tenant, and the tenant's deletion at once.

The deletion locks the tenant's row, then drops its schema. A provider account's write locked the
row only when it wrote the account (its foreign key), often after it had read one of the tenant's
tables (its Idempotency-Key, a subscription, an event's endpoints): each then waited for the other,
and PostgreSQL failed one of them with a deadlock. Such a request now holds the tenant's row before
anything else, so it ends before the deletion goes on, or, sent once the deletion began, finds the
tenant gone: 401, as for any key of a deleted tenant.

A raw transaction (``concurrently.held``) stops the first of the two where the deadlock formed, and
the second is sent while it waits.
"""

from __future__ import annotations

import asyncio

import pytest
from billplane_sandbox import payment_methods
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from billplane.runtime import Runtime
from tests.conftest import CreatedTenant, create_tenant
from tests.platform.billing_seed import insert
from tests.platform.concurrently import WAIT, held, in_thread
from tests.platform.invoices.helpers import SANDBOX_KEY, act, connect_sandbox
from tests.platform.invoices.test_payments import open_invoice

Client = AsyncTestClient[Litestar]
ACCOUNTS = "/v1/provider-accounts"
KEY = "create-during-deletion"
# A key stored long ago: the request that reuses it deletes the row, and waits for a lock held on it.
EXPIRED_KEY = (
    "INSERT INTO idempotency_keys (key, fingerprint, method, path, response_status, response_content_type, "
    f"response_body, expires_at) VALUES ('{KEY}', '-', 'POST', '{ACCOUNTS}', 201, 'application/json', '', "
    "now() - interval '1 day')"
)
# The tenant's first account is its default, a second one not.
SANDBOX = {"provider": "sandbox", "mode": "test", "credentials": {"api_key": SANDBOX_KEY}}


def account_row(account_id: int) -> str:
    """Held, a provider account's row stops a request, or a deletion, that writes it."""
    return f"SELECT 1 FROM control.provider_accounts WHERE id = {account_id} FOR UPDATE"


async def accounts_left(runtime: Runtime, tenant: CreatedTenant) -> list[int]:
    """The ids of the provider accounts naming the tenant, deleted ones too."""
    query = text("SELECT id FROM control.provider_accounts WHERE tenant_id = :tenant ORDER BY id")
    async with runtime.database.control_session() as session:
        return list(await session.scalars(query, {"tenant": tenant.id}))


async def test_an_account_created_with_an_idempotency_key_during_the_deletion_does_not_deadlock(
    client: Client, admin_headers: dict[str, str], runtime: Runtime, database_url: str
) -> None:
    # The request read the tenant's idempotency keys (the deletion's drop waited for it), then
    # inserted the account (its foreign key waited for the deletion's lock on the tenant's row).
    tenant = await create_tenant(client, admin_headers, "dellockkey")
    async with runtime.database.tenant_session(tenant.schema) as session:
        await session.execute(text(EXPIRED_KEY))
    headers = tenant.headers | {"Idempotency-Key": KEY}
    async with held(database_url, tenant.schema, f"SELECT 1 FROM idempotency_keys WHERE key = '{KEY}' FOR UPDATE"):
        create = in_thread(client.post(ACCOUNTS, json=SANDBOX, headers=headers))
        await asyncio.sleep(WAIT)  # its key read, waiting to delete the expired row
        deletion = in_thread(client.delete(f"/v1/admin/tenants/{tenant.slug}", headers=admin_headers))
        await asyncio.sleep(WAIT)
    created, deleted = await create, await deletion

    assert created.status_code == 201, created.text
    assert deleted.status_code == 204, deleted.text
    assert await accounts_left(runtime, tenant) == []


async def test_an_account_made_default_during_the_deletion_does_not_deadlock(
    client: Client, admin_headers: dict[str, str], runtime: Runtime, database_url: str
) -> None:
    # The request locked its account, then the previous default; the deletion dropped the schema
    # meanwhile and waited to delete the accounts; the request's event then waited for the drop.
    tenant = await create_tenant(client, admin_headers, "dellockdef")
    first = await connect_sandbox(client, tenant)
    second = (await client.post(ACCOUNTS, json=SANDBOX, headers=tenant.headers)).json()["id"]
    async with held(database_url, tenant.schema, account_row(first)):
        change = in_thread(client.patch(f"{ACCOUNTS}/{second}", json={"is_default": True}, headers=tenant.headers))
        await asyncio.sleep(WAIT)  # its account locked, waiting to unset the first one's default
        deletion = in_thread(client.delete(f"/v1/admin/tenants/{tenant.slug}", headers=admin_headers))
        await asyncio.sleep(WAIT)
    changed, deleted = await change, await deletion

    assert changed.status_code == 200, changed.text
    assert deleted.status_code == 204, deleted.text
    assert await accounts_left(runtime, tenant) == []


@pytest.mark.parametrize("idempotency_key", [None, "create-after-deletion"])
async def test_an_account_created_once_the_deletion_began_is_refused_as_the_deleted_tenants(
    client: Client, admin_headers: dict[str, str], runtime: Runtime, database_url: str, idempotency_key: str | None
) -> None:
    # It failed on the account's foreign key (or, with an Idempotency-Key, on the dropped table
    # of keys): a 500 for what is, to its caller, a key whose tenant is gone.
    tenant = await create_tenant(client, admin_headers, "dellockgone")
    first = await connect_sandbox(client, tenant)
    headers = tenant.headers | ({"Idempotency-Key": idempotency_key} if idempotency_key else {})
    async with held(database_url, tenant.schema, account_row(first)):
        deletion = in_thread(client.delete(f"/v1/admin/tenants/{tenant.slug}", headers=admin_headers))
        await asyncio.sleep(WAIT)  # the schema dropped, waiting to delete the tenant's accounts
        create = in_thread(client.post(ACCOUNTS, json=SANDBOX, headers=headers))
        await asyncio.sleep(WAIT)
    deleted, created = await deletion, await create

    assert deleted.status_code == 204, deleted.text
    assert created.status_code == 401, created.text
    assert created.json()["detail"] == "unknown or revoked API key"
    assert await accounts_left(runtime, tenant) == []


async def test_a_payment_written_while_the_deletion_checks_for_money_stops_the_deletion(
    client: Client, admin_headers: dict[str, str], runtime: Runtime, database_url: str
) -> None:
    # The deletion asked whether the tenant held money (a pending payment, a subscription its
    # provider bills) before it locked anything: a payment committed between that question and
    # the schema's drop was dropped with it, its charge in flight at the provider.
    tenant = await create_tenant(client, admin_headers, "dellockmoney")
    async with runtime.database.tenant_session(tenant.schema) as session:
        ada = await insert(session, "customers", name="Ada")
    pending = f"INSERT INTO payments (customer_id, status, amount, currency) VALUES ({ada}, 'pending', 500, 'USD')"
    async with held(database_url, tenant.schema, pending):
        deletion = in_thread(client.delete(f"/v1/admin/tenants/{tenant.slug}", headers=admin_headers))
        await asyncio.sleep(WAIT)  # asking, while the payment is not committed yet
    deleted = await deletion

    assert deleted.status_code == 409, deleted.text
    assert "pending" in deleted.json()["detail"]
    assert (await client.get(f"/v1/admin/tenants/{tenant.slug}", headers=admin_headers)).status_code == 200


async def test_a_deadlock_with_the_deletion_is_a_503_to_send_again_not_a_500(
    client: Client, admin_headers: dict[str, str], runtime: Runtime, database_url: str
) -> None:
    # A request that locked an invoice (a table the drop takes later) and then writes a payment
    # (a table the deletion locks first): PostgreSQL ends one of the two. Rolled back whole, it is
    # safe to send again, and says so.
    tenant = await create_tenant(client, admin_headers, "dellockrace")
    _, invoice = await open_invoice(client, runtime, tenant, payment_methods.SUCCEEDS, 1500)
    async with held(database_url, tenant.schema, f"SELECT 1 FROM invoices WHERE id = {invoice['id']} FOR UPDATE"):
        pay = in_thread(act(client, tenant, invoice["id"], "pay"))
        await asyncio.sleep(WAIT)  # the invoice read, waiting for its row
        deletion = in_thread(client.delete(f"/v1/admin/tenants/{tenant.slug}", headers=admin_headers))
        await asyncio.sleep(WAIT)
    paid, deleted = await pay, await deletion

    statuses = sorted([paid.status_code, deleted.status_code])
    assert 500 not in statuses, (paid.text, deleted.text)
    [lost] = [response for response in (paid, deleted) if response.status_code == 503]
    assert lost.headers["retry-after"] == "1"
    assert "send it again" in lost.json()["detail"]
