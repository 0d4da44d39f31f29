"""Usage of subscriptions whose periods the billing run does not move on.

``incomplete`` (waiting for the customer: a first payment, an approval) may never start: a record
of it is refused, with the reason, as one of a canceled subscription is, instead of being stored
where no invoice may ever count it. ``unpaid`` (dunning's final action stopped its billing until
its open invoice is paid) keeps its open period: a record in it is taken and billed when the
invoice is paid (tests/platform/dunning/test_dunning_endings.py), or by ``invoice_now`` when it is
canceled, even after the period's end, which the run never crossed; a record after it is refused,
saying why no next period opens.
"""

from __future__ import annotations

from datetime import timedelta

from litestar import Litestar
from litestar.testing import AsyncTestClient

from billplane.runtime import Runtime
from tests.platform.billing_seed import insert
from tests.platform.dunning.helpers import database_now, execute
from tests.platform.invoices.helpers import rows
from tests.platform.usage.seed import END, START, metered_tenant, record

Client = AsyncTestClient[Litestar]


async def test_usage_of_an_incomplete_subscription_is_refused_and_an_unpaid_ones_only_past_its_period(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    seed = await metered_tenant(client, admin_headers, runtime)
    ended = await database_now(runtime) - timedelta(minutes=1)
    async with runtime.database.tenant_session(seed.tenant.schema) as session:
        incomplete = await insert(
            session, "subscriptions", customer_id=seed.customer, plan_id=seed.plans["sum"], status="incomplete",
            current_period_start=START, current_period_end=END,
        )  # fmt: skip
        unpaid = await insert(
            session, "subscriptions", customer_id=seed.customer, plan_id=seed.plans["sum"], status="unpaid",
            current_period_start=START, current_period_end=ended,
        )  # fmt: skip
    records = [
        record(incomplete, "incomplete", at=START + timedelta(days=1)),
        record(unpaid, "in-the-period", at=ended - timedelta(seconds=1)),
        record(unpaid, "past-the-period", at=ended),
    ]

    sent = await client.post("/v1/usage-records", json={"records": records}, headers=seed.tenant.headers)

    assert sent.status_code == 201, sent.text
    incomplete_reason = (
        "the subscription is incomplete: it takes usage once the customer has completed it (a first payment, "
        "an approval)"
    )
    unpaid_reason = (
        f"after the open period, which ends {ended.isoformat()}; the subscription is unpaid: its next period "
        "starts once its open invoice is paid"
    )
    assert [(o["result"], o.get("field"), o.get("reason")) for o in sent.json()["data"]] == [
        ("refused", "subscription_id", incomplete_reason),
        ("accepted", None, None),
        ("refused", "timestamp", unpaid_reason),
    ]
    stored = await rows(runtime, seed.tenant, "SELECT subscription_id, client_event_id FROM usage_records")
    assert stored == [{"subscription_id": unpaid, "client_event_id": "in-the-period"}]


async def test_invoice_now_bills_an_unpaid_subscriptions_usage_after_its_period_ended(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    seed = await metered_tenant(client, admin_headers, runtime)
    subscription = seed.subscriptions["sum"]  # 2 per unit, summed
    sent = await client.post(
        "/v1/usage-records",
        json={"records": [record(subscription, "used", 7, at=START + timedelta(days=1))]},
        headers=seed.tenant.headers,
    )
    assert sent.json()["accepted"] == 1, sent.text
    # Dunning's final action marked it unpaid; its period ended since, and the run left it there.
    ended = await database_now(runtime) - timedelta(minutes=1)
    await execute(
        runtime, seed.tenant, "UPDATE subscriptions SET status = 'unpaid', current_period_end = :end WHERE id = :id",
        end=ended, id=subscription,
    )  # fmt: skip

    url = f"/v1/subscriptions/{subscription}/cancel"
    canceled = await client.post(url, json={"invoice_now": True}, headers=seed.tenant.headers)

    assert canceled.status_code == 200, canceled.text
    billed = await rows(
        runtime, seed.tenant,
        "SELECT i.billing_reason, i.total, l.quantity, l.period_start, l.period_end FROM invoice_lines l "
        "JOIN invoices i ON i.id = l.invoice_id WHERE i.subscription_id = :id",
        id=subscription,
    )  # fmt: skip
    assert billed == [
        {"billing_reason": "subscription_update", "total": 14, "quantity": 7, "period_start": START,
         "period_end": ended}
    ]  # fmt: skip
