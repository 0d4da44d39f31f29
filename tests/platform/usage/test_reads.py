"""Listing usage records (cursor pages) and the per-period summary of a subscription."""

from __future__ import annotations

from datetime import timedelta

from litestar import Litestar
from litestar.testing import AsyncTestClient

from billplane.runtime import Runtime
from tests.platform.billing_seed import insert
from tests.platform.usage.seed import END, NOW, START, metered_tenant, record

Client = AsyncTestClient[Litestar]


async def test_the_list_pages_through_one_subscriptions_records(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    seed = await metered_tenant(client, admin_headers, runtime)
    sub, other = seed.subscriptions["sum"], seed.subscriptions["max"]
    batch = [record(sub, f"e{i}", quantity=i) for i in range(5)] + [record(other, "o")]
    created = await client.post("/v1/usage-records", json={"records": batch}, headers=seed.tenant.headers)
    expected = [o["id"] for o in created.json()["data"][:5]]

    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"subscription_id": sub, "limit": 2}
        if cursor is not None:
            params["cursor"] = cursor
        page = (await client.get("/v1/usage-records", params=params, headers=seed.tenant.headers)).json()
        seen += [row["id"] for row in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(expected)


async def test_the_summary_aggregates_the_current_period_as_the_plan_says(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    seed = await metered_tenant(client, admin_headers, runtime)
    quantities = [(4, NOW - timedelta(days=2)), (9, NOW - timedelta(days=3)), (2, NOW - timedelta(days=1))]
    for name in ("sum", "max", "last"):
        batch = [record(seed.subscriptions[name], f"{name}{i}", q, at) for i, (q, at) in enumerate(quantities)]
        response = await client.post("/v1/usage-records", json={"records": batch}, headers=seed.tenant.headers)
        assert response.json()["accepted"] == 3
    # Stored before the period opened (the period moved on): not counted.
    async with runtime.database.tenant_session(seed.tenant.schema) as session:
        for name in ("sum", "max", "last"):
            old = {"quantity": 100, "timestamp": START - timedelta(days=1), "client_event_id": "old"}
            await insert(session, "usage_records", subscription_id=seed.subscriptions[name], **old)

    summaries = {}
    for name in ("sum", "max", "last"):
        response = await client.get(f"/v1/subscriptions/{seed.subscriptions[name]}/usage", headers=seed.tenant.headers)
        assert response.status_code == 200, response.text
        summaries[name] = response.json()
    assert {name: (s["aggregation"], s["quantity"], s["records"]) for name, s in summaries.items()} == {
        "sum": ("sum", 15, 3),
        "max": ("max", 9, 3),
        "last": ("last", 2, 3),
    }
    assert summaries["sum"]["period_end"].startswith(END.date().isoformat())


async def test_the_summary_of_a_plan_that_is_not_metered_is_422(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    seed = await metered_tenant(client, admin_headers, runtime)
    response = await client.get(f"/v1/subscriptions/{seed.subscriptions['flat']}/usage", headers=seed.tenant.headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "subscription_id"
    missing = await client.get("/v1/subscriptions/999999/usage", headers=seed.tenant.headers)
    assert missing.status_code == 404
