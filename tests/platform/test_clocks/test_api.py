"""/v1/test-clocks: create, read, list, delete, attach customers, ask for an advance; every refusal."""

from __future__ import annotations

from typing import Any

from billplane.runtime import Runtime
from tests.conftest import CreatedTenant, create_tenant
from tests.platform.dunning.helpers import Client, execute, types
from tests.platform.invoices.helpers import customer, rows

URL = "/v1/test-clocks"
START = "2030-01-01T00:00:00Z"


async def _clock(client: Client, tenant: CreatedTenant, frozen_time: str = START) -> dict[str, Any]:
    response = await client.post(URL, json={"name": "Renewals", "frozen_time": frozen_time}, headers=tenant.headers)
    assert response.status_code == 201, response.text
    clock: dict[str, Any] = response.json()
    return clock


async def test_create_get_list_and_delete(client: Client, admin_headers: dict[str, str], runtime: Runtime) -> None:
    tenant = await create_tenant(client, admin_headers, "clk")
    clock = await _clock(client, tenant)
    assert (clock["status"], clock["frozen_time"], clock["advancing_to"]) == ("ready", "2030-01-01T00:00:00Z", None)
    other = await _clock(client, tenant, "2031-06-01T12:00:00+02:00")
    assert (await client.get(f"{URL}/{clock['id']}", headers=tenant.headers)).json() == clock
    listed = (await client.get(URL, params={"limit": "1"}, headers=tenant.headers)).json()
    assert [row["id"] for row in listed["data"]] == [clock["id"]]
    assert listed["next_cursor"] is not None
    assert (await client.delete(f"{URL}/{other['id']}", headers=tenant.headers)).status_code == 204
    assert (await client.get(f"{URL}/{other['id']}", headers=tenant.headers)).status_code == 404
    assert await types(runtime, tenant, "test_clock") == ["test_clock.created"] * 2 + ["test_clock.deleted"]


async def test_a_time_without_an_offset_is_refused(client: Client, admin_headers: dict[str, str]) -> None:
    tenant = await create_tenant(client, admin_headers, "clk")
    response = await client.post(URL, json={"frozen_time": "2030-01-01T00:00:00"}, headers=tenant.headers)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "frozen_time"
    assert (await client.get(URL, headers=tenant.headers)).json()["data"] == []


async def test_attach_puts_a_new_customer_on_the_clock(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers, "clk")
    clock, ada = await _clock(client, tenant), await customer(client, tenant)
    for _ in range(2):  # attaching again changes nothing
        response = await client.post(
            f"{URL}/{clock['id']}/customers", json={"customer_id": ada}, headers=tenant.headers
        )
        assert response.status_code == 200, response.text
    [row] = await rows(runtime, tenant, "SELECT test_clock_id FROM customers WHERE id = :id", id=ada)
    assert row["test_clock_id"] == clock["id"]
    assert (await types(runtime, tenant, "test_clock")).count("test_clock.customer_attached") == 1


async def _attach(client: Client, tenant: CreatedTenant, clock: int, customer_id: int) -> Any:
    return await client.post(f"{URL}/{clock}/customers", json={"customer_id": customer_id}, headers=tenant.headers)


async def test_attach_refusals(client: Client, admin_headers: dict[str, str], runtime: Runtime) -> None:
    tenant = await create_tenant(client, admin_headers, "clk")
    clock, other = (await _clock(client, tenant))["id"], (await _clock(client, tenant))["id"]
    # Unknown customer.
    unknown = await _attach(client, tenant, clock, 999_999)
    assert (unknown.status_code, unknown.json()["errors"][0]["field"]) == (422, "customer_id")
    # On another clock already.
    ada = await customer(client, tenant)
    assert (await _attach(client, tenant, other, ada)).status_code == 200
    assert (await _attach(client, tenant, clock, ada)).status_code == 409
    # With billing history already (an invoice).
    bob = await customer(client, tenant, "Bob")
    body = {"customer_id": bob, "currency": "USD", "lines": [{"description": "x", "unit_amount": 1}]}
    assert (await client.post("/v1/invoices", json=body, headers=tenant.headers)).status_code == 201
    history = await _attach(client, tenant, clock, bob)
    assert (history.status_code, history.json()["errors"][0]["field"]) == (422, "customer_id")
    [row] = await rows(runtime, tenant, "SELECT test_clock_id FROM customers WHERE id = :id", id=bob)
    assert row["test_clock_id"] is None
    # Unknown clock.
    assert (await _attach(client, tenant, 999_999, bob)).status_code == 404


async def test_a_customer_charged_through_a_live_mode_account_is_refused(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers, "clk")
    body = {"provider": "sandbox", "mode": "live", "credentials": {"api_key": "sk_sandbox_live_0123456789"},
            "webhook_secret": "whsec_live_0123456789"}  # fmt: skip
    assert (await client.post("/v1/provider-accounts", json=body, headers=tenant.headers)).status_code == 201
    clock, ada = (await _clock(client, tenant))["id"], await customer(client, tenant)
    response = await _attach(client, tenant, clock, ada)
    assert (response.status_code, response.json()["errors"][0]["field"]) == (422, "customer_id"), response.text
    [row] = await rows(runtime, tenant, "SELECT test_clock_id FROM customers WHERE id = :id", id=ada)
    assert row["test_clock_id"] is None


async def test_advance_refusals(client: Client, admin_headers: dict[str, str], runtime: Runtime) -> None:
    tenant = await create_tenant(client, admin_headers, "clk")
    clock = (await _clock(client, tenant))["id"]
    bad = {
        "2030-01-01T00:00:00Z": "to",  # not after frozen_time
        "2029-12-31T00:00:00Z": "to",
        "2032-01-01T00:00:01Z": "to",  # more than two years on
        "2030-02-01T00:00:00": "to",  # no offset
    }
    for to, field in bad.items():
        response = await client.post(f"{URL}/{clock}/advance", json={"to": to}, headers=tenant.headers)
        assert (response.status_code, response.json()["errors"][0]["field"]) == (422, field), to
    assert (await client.get(f"{URL}/{clock}", headers=tenant.headers)).json()["status"] == "ready"
    two_years = await client.post(f"{URL}/{clock}/advance", json={"to": "2032-01-01T00:00:00Z"}, headers=tenant.headers)
    assert two_years.status_code == 202, two_years.text
    assert (two_years.json()["status"], two_years.json()["advancing_to"]) == ("advancing", "2032-01-01T00:00:00Z")
    shown = (await client.get(f"{URL}/{clock}", headers=tenant.headers)).json()
    assert shown["advancing_to"] == "2032-01-01T00:00:00Z"
    # While advancing: no second advance, no new customer, no delete.
    again = await client.post(f"{URL}/{clock}/advance", json={"to": "2031-01-01T00:00:00Z"}, headers=tenant.headers)
    assert again.status_code == 409
    assert (await _attach(client, tenant, clock, await customer(client, tenant))).status_code == 409
    assert (await client.delete(f"{URL}/{clock}", headers=tenant.headers)).status_code == 409
    assert (
        await client.post(f"{URL}/999999/advance", json={"to": "2031-01-01T00:00:00Z"}, headers=tenant.headers)
    ).status_code == 404


async def test_a_clock_with_live_customers_cannot_be_deleted(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers, "clk")
    clock, ada = (await _clock(client, tenant))["id"], await customer(client, tenant)
    assert (await _attach(client, tenant, clock, ada)).status_code == 200
    assert (await client.delete(f"{URL}/{clock}", headers=tenant.headers)).status_code == 409
    assert (await client.delete(f"/v1/customers/{ada}", headers=tenant.headers)).status_code == 204
    assert (await client.delete(f"{URL}/{clock}", headers=tenant.headers)).status_code == 204
    await execute(runtime, tenant, "SELECT 1")
    [row] = await rows(runtime, tenant, "SELECT test_clock_id FROM customers WHERE id = :id", id=ada)
    assert row["test_clock_id"] is None
