"""What /v1/subscriptions, /v1/invoices and /v1/payments share: read-only tenant lists and gets.

Keyset pages, 404 for unknown and foreign ids alike, 422 for a bad filter, 405 for every write
method, integers and decimal strings for money (never a float), and lines and refunds loaded with
one query per page, not one per row. Each resource's own fields and filters: test_*_reads.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from litestar import Litestar
from sqlalchemy import event

from billplane.invoices.models import INVOICE_STATUSES
from billplane.payments.models import PAYMENT_STATUSES
from billplane.runtime import Runtime
from billplane.subscriptions.models import SUBSCRIPTION_STATUSES
from tests.conftest import CreatedTenant, create_tenant
from tests.platform.billing_seed import (
    RESOURCES,
    Billing,
    Client,
    insert,
    list_ids,
    payment,
    seed,
    their_invoice,
    their_payment,
    their_subscription,
)

STATUSES = dict(zip(RESOURCES, (SUBSCRIPTION_STATUSES, INVOICE_STATUSES, PAYMENT_STATUSES), strict=True))
# Resources created by a POST to their collection (their other writes are actions: POST /{id}/...).
CREATED_BY_POST = {"invoices", "subscriptions"}
# Routes with their own tests (subscriptions' lifecycle, invoices' actions): method -> resources.
WRITTEN_BY = {"PATCH": {"subscriptions"}}
THEIR: dict[str, Callable[[Client, CreatedTenant], Awaitable[str]]] = {
    "subscriptions": their_subscription,
    "invoices": their_invoice,
    "payments": their_payment,
}


def _floats(value: object) -> list[float]:
    if isinstance(value, float):
        return [value]
    if isinstance(value, dict):
        return [found for item in value.values() for found in _floats(item)]
    if isinstance(value, list):
        return [found for item in value for found in _floats(item)]
    return []


def _one_id(billing: Billing, resource: str) -> int:
    return {
        "subscriptions": billing.subscriptions["active"],
        "invoices": billing.invoices["open"],
        "payments": billing.payments["succeeded"],
    }[resource]


@pytest.mark.parametrize("resource", RESOURCES)
async def test_money_is_never_a_float(
    resource: str, client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers)
    billing = await seed(runtime, tenant)
    listing = (await client.get(f"/v1/{resource}", headers=tenant.headers)).json()
    one = (await client.get(f"/v1/{resource}/{_one_id(billing, resource)}", headers=tenant.headers)).json()
    assert len(listing["data"]) == 4
    assert _floats(listing) == _floats(one) == []


@pytest.mark.parametrize("resource", RESOURCES)
async def test_pages_never_skip_or_repeat(
    resource: str, client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers)
    billing = await seed(runtime, tenant)
    expected = await list_ids(client, tenant, resource)
    later: dict[str, dict[str, object]] = {  # the rest of a row of each resource, for Ada
        "subscriptions": {"plan_id": billing.flat, "status": "active"},
        "invoices": {"currency": "USD"},
        "payments": {"amount": 1, "currency": "USD", "status": "pending"},
    }
    seen: list[int] = []
    cursor: str | None = None
    while True:
        params = {"limit": "3"} | ({"cursor": cursor} if cursor else {})
        page = (await client.get(f"/v1/{resource}", params=params, headers=tenant.headers)).json()
        seen += [row["id"] for row in page["data"]]
        if len(seen) == 3:  # rows inserted between pages appear once, at the end
            async with runtime.database.tenant_session(tenant.schema) as session:
                expected.append(await insert(session, resource, customer_id=billing.ada, **later[resource]))
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == expected
    assert len(set(seen)) == 5


@pytest.mark.parametrize("resource", RESOURCES)
async def test_ids_of_another_tenant_are_404_like_unknown_ids(
    resource: str, client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    mine, theirs = await create_tenant(client, admin_headers), await create_tenant(client, admin_headers)
    for tenant in (mine, theirs):
        await seed(runtime, tenant)
    foreign = await THEIR[resource](client, theirs)
    assert (await client.get(f"/v1/{resource}/{foreign}", headers=theirs.headers)).status_code == 200
    crossed = await client.get(f"/v1/{resource}/{foreign}", headers=mine.headers)
    unknown = await client.get(f"/v1/{resource}/999999", headers=mine.headers)
    beyond_bigint = await client.get(f"/v1/{resource}/{2**63}", headers=mine.headers)
    assert crossed.status_code == unknown.status_code == beyond_bigint.status_code == 404
    assert crossed.json().keys() == unknown.json().keys() == beyond_bigint.json().keys()
    assert crossed.json()["code"] == unknown.json()["code"] == "not_found"
    listing = await client.get(f"/v1/{resource}", headers=mine.headers)
    assert len(listing.json()["data"]) == 4
    assert theirs.slug not in crossed.text + listing.text


@pytest.mark.parametrize("resource", RESOURCES)
async def test_bad_filters_are_422(resource: str, client: Client, admin_headers: dict[str, str]) -> None:
    tenant = await create_tenant(client, admin_headers)
    for status in STATUSES[resource]:
        response = await client.get(f"/v1/{resource}", params={"status": status}, headers=tenant.headers)
        assert response.status_code == 200, response.text
    for status in ("ACTIVE", "bogus", ""):
        response = await client.get(f"/v1/{resource}", params={"status": status}, headers=tenant.headers)
        assert response.status_code == 422, (status, response.text)
        assert [error["field"] for error in response.json()["errors"]] == ["status"]
    for bad_id in ("0", "abc", str(2**63)):
        response = await client.get(f"/v1/{resource}", params={"customer_id": bad_id}, headers=tenant.headers)
        assert response.status_code == 422, (bad_id, response.text)
        assert [error["field"] for error in response.json()["errors"]] == ["customer_id"]
    assert (await client.get(f"/v1/{resource}", params={"cursor": "junk"}, headers=tenant.headers)).status_code == 422


@pytest.mark.parametrize("resource", RESOURCES)
async def test_no_write_method_exists(
    resource: str, client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers)
    billing = await seed(runtime, tenant)
    for path in (f"/v1/{resource}", f"/v1/{resource}/{_one_id(billing, resource)}"):
        before = (await client.get(path, headers=tenant.headers)).json()
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            if method == "POST" and path == f"/v1/{resource}" and resource in CREATED_BY_POST:
                continue
            if resource in WRITTEN_BY.get(method, set()) and path != f"/v1/{resource}":
                continue
            response = await client.request(method, path, json={"status": "canceled"}, headers=tenant.headers)
            assert response.status_code == 405, (method, path, response.text)
        assert (await client.get(path, headers=tenant.headers)).json() == before


async def test_lines_and_refunds_load_in_one_query_per_page(
    app: Litestar, client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers)
    billing = await seed(runtime, tenant)
    async with runtime.database.tenant_session(tenant.schema) as session:
        for _ in range(5):  # more rows with children than a lazy load per row could hide
            refunded = await payment(session, billing.bob, "succeeded", 10, refunded_amount=1)
            await insert(session, "refunds", payment_id=refunded, amount=1, currency="USD", status="succeeded")
    statements: list[str] = []

    def record(_connection: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    engine = app.state.runtime.database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        invoices = (await client.get("/v1/invoices", headers=tenant.headers)).json()["data"]
        payments = (await client.get("/v1/payments", headers=tenant.headers)).json()["data"]
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert [len(invoice["lines"]) for invoice in invoices] == [1, 2, 1, 0]
    assert [len(payment["refunds"]) for payment in payments] == [2, 0, 0, 0, 1, 1, 1, 1, 1]
    assert sum("FROM invoice_lines" in statement for statement in statements) == 1, statements
    assert sum("FROM refunds" in statement for statement in statements) == 1, statements


async def test_openapi_names_the_operations_and_status_values(client: Client) -> None:
    paths: dict[str, Any] = (await client.get("/schema/openapi.json")).json()["paths"]
    for resource, statuses in STATUSES.items():
        singular = resource.removesuffix("s")
        item, listing = paths[f"/v1/{resource}/{{{singular}_id}}"], paths[f"/v1/{resource}"]
        assert set(item) == {"get"} | ({"patch"} if resource in WRITTEN_BY["PATCH"] else set())
        assert set(listing) == {"get"} | ({"post"} if resource in CREATED_BY_POST else set())
        assert item["get"]["operationId"] == f"get{singular.title()}"
        assert listing["get"]["operationId"] == f"list{resource.title()}"
        status = next(parameter for parameter in listing["get"]["parameters"] if parameter["name"] == "status")
        assert status["schema"]["enum"] == list(statuses)
