"""A customer's payment methods through the API: a provider's token registered, listed, detached.

Before, payment methods could not be written at all (only by SQL, as the tests did): a tenant
could never charge an invoice, nor run the three-month test-clock demo, without one.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from billplane_sandbox import payment_methods
from sqlalchemy import text

from billplane.runtime import Runtime
from tests.conftest import CreatedTenant, create_tenant
from tests.platform.invoices.helpers import Client, act, connect_sandbox, customer, draft, rows
from tests.platform.sync_fakes import as_worker, drain

PATH = "/v1/customers/{}/payment-methods"


@pytest.fixture
async def worker(runtime: Runtime) -> Runtime:
    return await as_worker(runtime)


async def sandbox_tenant(client: Client, admin_headers: dict[str, str], prefix: str) -> tuple[CreatedTenant, int, int]:
    """A tenant with a sandbox account (its default) and a customer: (tenant, account, customer)."""
    tenant = await create_tenant(client, admin_headers, prefix)
    account = await connect_sandbox(client, tenant)
    return tenant, account, await customer(client, tenant)


async def attach(client: Client, tenant: CreatedTenant, customer_id: int, token: str, **more: Any) -> Any:
    return await client.post(PATH.format(customer_id), json={"token": token, **more}, headers=tenant.headers)


async def listed(client: Client, tenant: CreatedTenant, customer_id: int) -> list[dict[str, Any]]:
    response = await client.get(PATH.format(customer_id), headers=tenant.headers)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def event_types(worker: Runtime, tenant: CreatedTenant, object_type: str) -> list[str]:
    found = await rows(worker, tenant, f"SELECT type FROM events WHERE object_type = '{object_type}' ORDER BY id")
    return [row["type"] for row in found]


async def test_a_registered_token_is_the_customers_default_and_pays_its_first_invoice(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    tenant, account, ada = await sandbox_tenant(client, admin_headers, "pmuse")
    created = await attach(client, tenant, ada, payment_methods.SUCCEEDS)
    assert created.status_code == 201, created.text
    method = created.json()
    assert (method["provider"], method["provider_account_id"]) == ("sandbox", account)
    assert method["provider_payment_method_id"].startswith(f"{payment_methods.SUCCEEDS}.")  # Ada's own
    assert (method["type"], method["is_default"]) == ("card", True)
    assert await listed(client, tenant, ada) == [method]
    assert await event_types(worker, tenant, "payment_method") == ["payment_method.attached"]

    product = (await client.post("/v1/products", json={"name": "API"}, headers=tenant.headers)).json()
    plan = {"product_id": product["id"], "name": "Pro", "pricing_model": "flat", "amount": 1500}
    plan |= {"currency": "USD", "billing_interval": "month"}
    plan_id = (await client.post("/v1/plans", json=plan, headers=tenant.headers)).json()["id"]
    body = {"customer_id": ada, "plan_id": plan_id}
    assert (await client.post("/v1/subscriptions", json=body, headers=tenant.headers)).status_code == 201
    await drain(worker)

    [invoice] = (await client.get("/v1/invoices", headers=tenant.headers)).json()["data"]
    assert (invoice["status"], invoice["total"]) == ("paid", 1500)


async def test_a_second_default_replaces_the_first_and_a_retry_registers_once(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    tenant, _, ada = await sandbox_tenant(client, admin_headers, "pmtwo")
    first = (await attach(client, tenant, ada, payment_methods.SUCCEEDS)).json()
    second = (await attach(client, tenant, ada, payment_methods.DECLINED)).json()
    again = await attach(client, tenant, ada, payment_methods.DECLINED)  # the same token, as a retry
    assert again.status_code == 201, again.text
    assert again.json()["id"] == second["id"]
    defaults = {row["id"]: row["is_default"] for row in await listed(client, tenant, ada)}
    assert defaults == {first["id"]: False, second["id"]: True}
    spare = await attach(client, tenant, ada, payment_methods.INSUFFICIENT_FUNDS, default=False)
    assert spare.json()["is_default"] is False
    assert [row["is_default"] for row in await listed(client, tenant, ada)] == [False, True, False]
    # The method that stopped being the default says so: a client keeping each object's latest
    # event would otherwise hold two defaults.
    changes = await rows(
        worker, tenant, "SELECT type, object_id, data->>'is_default' AS is_default FROM events "
        "WHERE object_type = 'payment_method' ORDER BY id",
    )  # fmt: skip
    assert [(row["type"], row["object_id"], row["is_default"]) for row in changes] == [
        ("payment_method.attached", first["id"], "true"),
        ("payment_method.updated", first["id"], "false"),
        ("payment_method.attached", second["id"], "true"),
        ("payment_method.attached", spare.json()["id"], "false"),
    ]


async def test_what_the_provider_refuses_is_a_422_naming_the_token_and_writes_nothing(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    tenant, _, ada = await sandbox_tenant(client, admin_headers, "pmbad")
    refused = await attach(client, tenant, ada, "pm_card_visa")
    assert refused.status_code == 422
    [error] = refused.json()["errors"]
    assert error["field"] == "token"
    assert payment_methods.SUCCEEDS in error["message"]  # the sandbox says which tokens exist
    assert await listed(client, tenant, ada) == []
    assert await event_types(worker, tenant, "payment_method") == []


async def test_a_method_of_another_customer_or_an_unknown_customer_is_refused(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    tenant, _, ada = await sandbox_tenant(client, admin_headers, "pmwho")
    bob = await customer(client, tenant, "Bob")
    mine = (await attach(client, tenant, ada, payment_methods.SUCCEEDS)).json()
    theirs = (await attach(client, tenant, bob, payment_methods.SUCCEEDS)).json()  # Bob's own id for it
    assert theirs["provider_payment_method_id"] != mine["provider_payment_method_id"]
    # A method the provider answers with that billplane holds for another customer.
    await rows(worker, tenant, f"UPDATE payment_methods SET customer_id = {bob} WHERE id = {mine['id']} RETURNING id")
    taken = await attach(client, tenant, ada, payment_methods.SUCCEEDS)
    assert taken.status_code == 422
    assert taken.json()["errors"][0]["field"] == "token"
    other = await create_tenant(client, admin_headers, "pmwho")
    assert (await attach(client, other, ada, payment_methods.SUCCEEDS)).status_code == 404
    unknown = await attach(client, tenant, ada, payment_methods.SUCCEEDS, provider_account_id=999_999_999)
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "provider_account_id"


async def test_a_provider_without_the_capability_is_refused(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers, "pmcap")
    # PayPal keeps its own payment methods (its subscriptions are paid at PayPal). Its secrets are
    # never opened: the capability is checked first.
    account = 10_000_000 + secrets.randbelow(10_000_000)
    async with worker.database.transaction() as connection:
        await connection.execute(
            text(
                "INSERT INTO control.provider_accounts (id, tenant_id, provider, mode, credentials_ciphertext,"
                " credentials_key_id) VALUES (:id, :tenant, 'paypal', 'test', '\\x00', 'k1')"
            ),
            {"id": account, "tenant": tenant.id},
        )
    ada = await customer(client, tenant)
    refused = await attach(client, tenant, ada, "tok_1", provider_account_id=account)
    assert refused.status_code == 422
    [error] = refused.json()["errors"]
    assert error["field"] == "provider_account_id"
    assert "cannot register payment methods" in error["message"]


async def test_detaching_stops_charging_it_and_a_subscription_that_named_it_falls_back(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    tenant, _, ada = await sandbox_tenant(client, admin_headers, "pmdel")
    kept = (await attach(client, tenant, ada, payment_methods.SUCCEEDS)).json()
    named = (await attach(client, tenant, ada, payment_methods.DECLINED, default=False)).json()
    product = (await client.post("/v1/products", json={"name": "API"}, headers=tenant.headers)).json()
    plan = {"product_id": product["id"], "name": "Pro", "pricing_model": "flat", "amount": 1500}
    plan |= {"currency": "USD", "billing_interval": "month", "trial_period_days": 30}
    plan_id = (await client.post("/v1/plans", json=plan, headers=tenant.headers)).json()["id"]
    body = {"customer_id": ada, "plan_id": plan_id, "payment_method_id": named["id"]}
    subscription = (await client.post("/v1/subscriptions", json=body, headers=tenant.headers)).json()
    assert subscription["payment_method_id"] == named["id"]

    url = f"{PATH.format(ada)}/{named['id']}"
    assert (await client.delete(url, headers=tenant.headers)).status_code == 204
    assert [row["id"] for row in await listed(client, tenant, ada)] == [kept["id"]]
    shown = await client.get(f"/v1/subscriptions/{subscription['id']}", headers=tenant.headers)
    assert shown.json()["payment_method_id"] is None
    assert (await client.delete(url, headers=tenant.headers)).status_code == 404
    assert await event_types(worker, tenant, "payment_method") == ["payment_method.attached"] * 2 + [
        "payment_method.detached"
    ]
    assert (await event_types(worker, tenant, "subscription"))[-1] == "subscription.updated"


async def test_a_charge_queued_before_its_method_was_detached_goes_to_the_default_or_fails_unsent(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    tenant, _, ada = await sandbox_tenant(client, admin_headers, "pmqueued")
    first = (await attach(client, tenant, ada, payment_methods.DECLINED)).json()  # the default
    invoice = await draft(client, tenant, ada, 700)
    assert (await act(client, tenant, invoice["id"], "finalize")).status_code == 200
    paid = await act(client, tenant, invoice["id"], "pay")
    assert paid.status_code in {200, 202}, paid.text
    kept = (await attach(client, tenant, ada, payment_methods.SUCCEEDS, default=True)).json()
    # Detached while its charge waits for the worker: the charge goes to the default instead.
    assert (await client.delete(f"{PATH.format(ada)}/{first['id']}", headers=tenant.headers)).status_code == 204
    await drain(worker)
    [payment] = (await client.get("/v1/payments", headers=tenant.headers)).json()["data"]
    assert (payment["status"], payment["metadata"]["payment_method_id"]) == ("succeeded", str(kept["id"]))
    assert (await client.get(f"/v1/invoices/{invoice['id']}", headers=tenant.headers)).json()["status"] == "paid"

    # A method the tenant named on /pay is not replaced: the charge fails unsent, default or not.
    named = (await attach(client, tenant, ada, payment_methods.SUCCEEDS, default=False)).json()
    chosen = await draft(client, tenant, ada, 500)
    assert (await act(client, tenant, chosen["id"], "finalize")).status_code == 200
    assert (await act(client, tenant, chosen["id"], "pay", payment_method_id=named["id"])).status_code in {200, 202}
    assert (await client.delete(f"{PATH.format(ada)}/{named['id']}", headers=tenant.headers)).status_code == 204
    await drain(worker)
    [failed] = await rows(
        worker,
        tenant,
        "SELECT status, failure_code, failure_message FROM payments WHERE invoice_id = :id",
        id=chosen["id"],
    )
    assert (failed["status"], failed["failure_code"]) == ("failed", "payment_method_detached")
    assert "named for this charge" in failed["failure_message"]

    # With no other method to take, it fails without reaching the provider.
    second = await draft(client, tenant, ada, 300)
    assert (await act(client, tenant, second["id"], "finalize")).status_code == 200
    assert (await act(client, tenant, second["id"], "pay")).status_code in {200, 202}
    assert (await client.delete(f"{PATH.format(ada)}/{kept['id']}", headers=tenant.headers)).status_code == 204
    await drain(worker)
    found = await rows(
        worker, tenant, "SELECT p.status, p.failure_code, p.provider_payment_id, o.calls FROM payments p "
        "JOIN outbox o ON o.object_id = p.id AND o.kind = 'payment.charge' WHERE p.invoice_id = :id",
        id=second["id"],
    )  # fmt: skip
    assert found == [
        {"status": "failed", "failure_code": "payment_method_detached", "provider_payment_id": None, "calls": 0}
    ]
