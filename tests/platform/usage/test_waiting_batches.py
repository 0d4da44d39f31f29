"""A batch that waits on a change holding its subscription (a plan change, a test clock advance)
judges its records by what that change committed: its plan, its period and its clock.

The service is called directly: the test client would block this loop while the batch waits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime, timedelta

import msgspec
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from billplane.runtime import Runtime
from billplane.usage.schemas import UsageBatch, UsageOutcome
from billplane.usage.service import UsageService
from tests.platform.usage.seed import NOW, Metered, clocked_subscription, metered_tenant, record

Client = AsyncTestClient[Litestar]


async def _ingest_behind(
    runtime: Runtime, seed: Metered, *, change: str, params: Mapping[str, object], sent: dict[str, object]
) -> UsageOutcome:
    """The outcome of ``sent``, a batch of one record posted while a transaction that ran
    ``change`` holds its subscription, then commits."""
    batch = msgspec.json.decode(msgspec.json.encode({"records": [sent]}), type=UsageBatch)

    async def ingest() -> UsageOutcome:
        async with runtime.database.tenant_session(seed.tenant.schema) as session:
            usage = UsageService(session, tenant_id=seed.tenant.id, schema=seed.tenant.schema, plugins=runtime.plugins)
            [outcome] = (await usage.ingest(batch)).data
            return outcome

    async with runtime.database.tenant_session(seed.tenant.schema) as change_session:
        await change_session.execute(text(change), params)
        waiting = asyncio.create_task(ingest())
        await asyncio.sleep(0.5)
        assert not waiting.done(), "the batch should wait for the change's lock"
    return await waiting


async def test_a_batch_waiting_on_a_plan_change_is_priced_by_the_new_plan(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    seed = await metered_tenant(client, admin_headers, runtime)
    subscription = seed.subscriptions["sum"]
    earlier = await client.post(
        "/v1/usage-records", json={"records": [record(subscription, "before", 5)]}, headers=seed.tenant.headers
    )
    assert earlier.status_code == 201, earlier.text

    outcome = await _ingest_behind(
        runtime,
        seed,
        change="UPDATE subscriptions SET plan_id = :plan WHERE id = :id",
        params={"plan": seed.plans["max"], "id": subscription},
        sent=record(subscription, "during", 3),
    )

    assert (outcome.result, outcome.field, outcome.reason) == ("accepted", None, None)
    summary = await client.get(f"/v1/subscriptions/{subscription}/usage", headers=seed.tenant.headers)
    assert summary.status_code == 200, summary.text
    got = summary.json()
    assert (got["plan_id"], got["aggregation"], got["quantity"], got["records"]) == (seed.plans["max"], "max", 5, 2)


async def test_a_batch_waiting_on_a_change_to_a_plan_that_is_not_metered_is_refused_for_it(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    seed = await metered_tenant(client, admin_headers, runtime)
    subscription = seed.subscriptions["sum"]

    outcome = await _ingest_behind(
        runtime,
        seed,
        change="UPDATE subscriptions SET plan_id = :plan WHERE id = :id",
        params={"plan": seed.plans["flat"], "id": subscription},
        sent=record(subscription, "during"),
    )

    assert (outcome.result, outcome.field, outcome.reason) == (
        "refused",
        "subscription_id",
        "the subscription's plan is not metered (flat)",
    )


async def test_a_batch_waiting_on_a_clock_advance_reads_the_advanced_clock(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    seed = await metered_tenant(client, admin_headers, runtime)
    later = NOW + timedelta(days=60)
    clock, subscription = await clocked_subscription(runtime, seed, later)
    advanced: datetime = later + timedelta(days=30)

    # An advance as the clock's run makes it: the clock moves on and its subscription with it.
    outcome = await _ingest_behind(
        runtime,
        seed,
        change=(
            "WITH clock AS (UPDATE test_clocks SET frozen_time = :advanced WHERE id = :clock) "
            "UPDATE subscriptions SET current_period_start = :start, current_period_end = :end WHERE id = :id"
        ),
        params={
            "advanced": advanced,
            "clock": clock,
            "start": later + timedelta(days=25),
            "end": later + timedelta(days=55),
            "id": subscription,
        },
        sent=record(subscription, "at-the-new-time", at=advanced),
    )

    assert (outcome.result, outcome.field, outcome.reason) == ("accepted", None, None)
