"""POST /v1/usage-records: per-record outcomes in request order, duplicates, refusals, bad bodies."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import msgspec
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from billplane.runtime import Runtime
from billplane.usage.schemas import UsageBatch, UsageBatchResult
from billplane.usage.service import UsageService
from tests.conftest import CreatedTenant, create_tenant
from tests.platform.billing_seed import insert
from tests.platform.usage.seed import END, NOW, START, Metered, clocked_subscription, metered_tenant, record

Client = AsyncTestClient[Litestar]
URL = "/v1/usage-records"


async def stored(runtime: Runtime, tenant: CreatedTenant) -> list[tuple[int, int, str]]:
    async with runtime.database.tenant_session(tenant.schema) as session:
        rows = await session.execute(text("SELECT subscription_id, quantity, client_event_id FROM usage_records"))
        return sorted((row[0], row[1], row[2]) for row in rows)


async def post(client: Client, tenant: CreatedTenant, records: list[dict[str, object]]) -> dict[str, object]:
    response = await client.post(URL, json={"records": records}, headers=tenant.headers)
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


async def test_records_are_stored_and_each_gets_its_id(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    seed = await metered_tenant(client, admin_headers, runtime)
    subscription = seed.subscriptions["sum"]
    body = await post(client, seed.tenant, [record(subscription, f"e{i}", quantity=i) for i in range(3)])

    outcomes = body["data"]
    assert isinstance(outcomes, list)
    assert [(o["result"], o["client_event_id"]) for o in outcomes] == [("accepted", f"e{i}") for i in range(3)]
    assert (body["accepted"], body["duplicates"], body["refused"]) == (3, 0, 0)
    assert await stored(runtime, seed.tenant) == [(subscription, i, f"e{i}") for i in range(3)]
    listed = await client.get(URL, params={"subscription_id": subscription}, headers=seed.tenant.headers)
    by_event = {row["client_event_id"]: row["id"] for row in listed.json()["data"]}
    assert {o["client_event_id"]: o["id"] for o in outcomes} == by_event


async def test_duplicates_in_the_batch_and_from_before_are_stored_once(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    seed = await metered_tenant(client, admin_headers, runtime)
    sub, other = seed.subscriptions["sum"], seed.subscriptions["max"]
    first = await post(client, seed.tenant, [record(sub, "a", 5)])
    first_id = first["data"][0]["id"]  # type: ignore[index]

    body = await post(
        client,
        seed.tenant,
        [record(sub, "a", 7), record(sub, "b", 1), record(sub, "b", 9), record(other, "a", 3)],
    )

    outcomes = body["data"]
    assert isinstance(outcomes, list)
    assert [o["result"] for o in outcomes] == ["duplicate", "accepted", "duplicate", "accepted"]
    assert outcomes[0]["id"] == first_id
    assert outcomes[2]["id"] == outcomes[1]["id"]  # the batch's own earlier record
    assert outcomes[3]["subscription_id"] == other  # the same event id on another subscription is another event
    assert (body["accepted"], body["duplicates"], body["refused"]) == (2, 2, 0)
    assert await stored(runtime, seed.tenant) == sorted([(sub, 5, "a"), (sub, 1, "b"), (other, 3, "a")])


async def test_each_refused_record_names_its_field_and_the_others_are_stored(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    seed = await metered_tenant(client, admin_headers, runtime)
    theirs = await metered_tenant(client, admin_headers, runtime)
    subs = seed.subscriptions
    records = [
        record(subs["sum"], "ok-1"),
        record(theirs.subscriptions["sum"] + 10_000, "missing"),
        record(subs["flat"], "flat"),
        record(subs["canceled"], "canceled"),
        record(subs["ended"], "ended"),
        record(subs["unstarted"], "unstarted"),
        record(subs["sum"], "early", at=START - timedelta(seconds=1)),
        record(subs["sum"], "late", at=END),
        record(subs["sum"], "future", at=NOW + timedelta(hours=1)),
        record(subs["max"], "ok-2", at=START),
    ]

    body = await post(client, seed.tenant, records)

    outcomes = body["data"]
    assert isinstance(outcomes, list)
    assert [(o["client_event_id"], o["result"], o.get("field")) for o in outcomes] == [
        ("ok-1", "accepted", None),
        ("missing", "refused", "subscription_id"),
        ("flat", "refused", "subscription_id"),
        ("canceled", "refused", "subscription_id"),
        ("ended", "refused", "subscription_id"),
        ("unstarted", "refused", "subscription_id"),
        ("early", "refused", "timestamp"),
        ("late", "refused", "timestamp"),
        ("future", "refused", "timestamp"),
        ("ok-2", "accepted", None),
    ]
    assert outcomes[3]["reason"] == "the subscription is canceled: it takes no more usage"
    assert all("id" not in o for o in outcomes if o["result"] == "refused")
    assert await stored(runtime, seed.tenant) == sorted([(subs["sum"], 1, "ok-1"), (subs["max"], 1, "ok-2")])


async def test_another_tenants_subscription_is_refused_like_a_missing_one(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    mine = await metered_tenant(client, admin_headers, runtime)
    theirs = await metered_tenant(client, admin_headers, runtime)
    # Both tenants have the same ids: one only they have names nothing here.
    async with runtime.database.tenant_session(theirs.tenant.schema) as session:
        extra = await insert(
            session, "subscriptions", customer_id=theirs.customer, plan_id=theirs.plans["sum"], status="active",
            current_period_start=START, current_period_end=END,
        )  # fmt: skip

    body = await post(client, mine.tenant, [record(extra, "x")])

    assert body["data"] == [
        {"result": "refused", "client_event_id": "x", "subscription_id": extra, "field": "subscription_id",
         "reason": "no such subscription"},
    ]  # fmt: skip
    assert await stored(runtime, theirs.tenant) == []


async def test_a_retried_record_refused_now_but_stored_before_is_a_duplicate(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    seed = await metered_tenant(client, admin_headers, runtime)
    sub = seed.subscriptions["sum"]
    first = await post(client, seed.tenant, [record(sub, "kept")])
    async with runtime.database.tenant_session(seed.tenant.schema) as session:
        await session.execute(text("UPDATE subscriptions SET status = 'canceled' WHERE id = :id"), {"id": sub})

    body = await post(client, seed.tenant, [record(sub, "kept"), record(sub, "new")])

    outcomes = body["data"]
    assert isinstance(outcomes, list)
    assert [(o["result"], o.get("id")) for o in outcomes] == [
        ("duplicate", first["data"][0]["id"]),  # type: ignore[index]
        ("refused", None),
    ]


async def test_a_test_clock_customer_reports_at_the_clock_time(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    seed = await metered_tenant(client, admin_headers, runtime)
    later = NOW + timedelta(days=60)
    _, sub = await clocked_subscription(runtime, seed, later)

    body = await post(
        client,
        seed.tenant,
        [record(sub, "at-clock", at=later), record(sub, "past-clock", at=later + timedelta(hours=1))],
    )

    assert [(o["result"], o.get("field")) for o in body["data"]] == [  # type: ignore[attr-defined]
        ("accepted", None),
        ("refused", "timestamp"),
    ]


async def test_malformed_bodies_are_422_and_store_nothing(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    seed = await metered_tenant(client, admin_headers, runtime)
    sub = seed.subscriptions["sum"]
    good = record(sub, "good")
    bodies = [
        {"records": []},
        {"records": [record(sub, f"e{i}") for i in range(1001)]},
        {"records": [good, record(sub, "neg", quantity=-1)]},
        {"records": [good, {**record(sub, "naive"), "timestamp": "2025-01-10T10:00:00"}]},
        {"records": [good, {**record(sub, "float"), "quantity": 1.5}]},
        {"records": [good, {key: value for key, value in record(sub, "x").items() if key != "client_event_id"}]},
        {"records": [good, {**record(sub, "extra"), "unit": "calls"}]},
        {"records": [good, record(0, "zero")]},
        {"records": [good, record(sub, "")]},
    ]
    for body in bodies:
        response = await client.post(URL, json=body, headers=seed.tenant.headers)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    assert await stored(runtime, seed.tenant) == []


async def test_a_full_batch_of_1000_is_taken(client: Client, admin_headers: dict[str, str], runtime: Runtime) -> None:
    seed = await metered_tenant(client, admin_headers, runtime)
    sub = seed.subscriptions["sum"]
    body = await post(client, seed.tenant, [record(sub, f"e{i}", quantity=i) for i in range(1000)])
    assert body["accepted"] == 1000
    assert len(await stored(runtime, seed.tenant)) == 1000


async def test_an_idempotency_key_replays_the_first_answer(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    seed = await metered_tenant(client, admin_headers, runtime)
    payload = {"records": [record(seed.subscriptions["sum"], "once")]}
    headers = seed.tenant.headers | {"Idempotency-Key": "usage-batch-1"}
    first = await client.post(URL, json=payload, headers=headers)
    again = await client.post(URL, json=payload, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert first.json()["data"][0]["result"] == "accepted"


async def test_usage_needs_no_tenant_of_its_own_to_be_listed(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    seed: Metered = await metered_tenant(client, admin_headers, runtime)
    other = await create_tenant(client, admin_headers, "usage")
    await post(client, seed.tenant, [record(seed.subscriptions["sum"], "mine")])
    listed = await client.get(URL, headers=other.headers)
    assert listed.status_code == 200
    assert listed.json()["data"] == []


async def test_a_record_of_a_period_a_billing_run_is_closing_waits_and_is_refused(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    """A billing run holds the subscription (FOR UPDATE) while it sums the ended period's usage and
    moves it on: a batch with a record of that period, sent meanwhile, waits for the run, then the
    record is refused, since no invoice would count it. Before, it was checked against the old
    period and stored. (The service is called directly: the test client would block this loop.)"""
    seed = await metered_tenant(client, admin_headers, runtime)
    subscription = seed.subscriptions["sum"]
    batch = msgspec.json.decode(
        msgspec.json.encode({"records": [record(subscription, "late", at=START)]}), type=UsageBatch
    )

    async def ingest() -> UsageBatchResult:
        async with runtime.database.tenant_session(seed.tenant.schema) as session:
            usage = UsageService(session, tenant_id=seed.tenant.id, schema=seed.tenant.schema, plugins=runtime.plugins)
            return await usage.ingest(batch)

    async with runtime.database.tenant_session(seed.tenant.schema) as run:  # the run's transaction
        await run.execute(text("SELECT id FROM subscriptions WHERE id = :id FOR UPDATE"), {"id": subscription})
        await run.execute(
            text("UPDATE subscriptions SET current_period_start = :end, current_period_end = :next WHERE id = :id"),
            {"end": NOW - timedelta(seconds=1), "next": END + timedelta(days=30), "id": subscription},
        )
        sent = asyncio.create_task(ingest())
        await asyncio.sleep(0.5)
        assert not sent.done()  # held by the run's lock
    result = await sent

    [outcome] = result.data
    assert (outcome.result, outcome.field) == ("refused", "timestamp")
    assert await stored(runtime, seed.tenant) == []
