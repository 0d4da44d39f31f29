"""/v1/subscriptions writes: create, change, cancel, pause, resume; every transition allowed and
refused; validation; events; and mirroring each change to the provider through the outbox."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from billplane.runtime import Runtime
from billplane.subscriptions.models import SUBSCRIPTION_STATUSES
from billplane.subscriptions.transitions import ALLOWED
from tests.conftest import CreatedTenant, create_tenant
from tests.platform.billing_seed import insert
from tests.platform.sync_fakes import AccountRow, FakeState, StaticAccounts, drain
from tests.platform.test_webhooks import tenant_with_subscription

Client = AsyncTestClient[Litestar]
PATH = "/v1/subscriptions"


async def seeded(runtime: Runtime, tenant: CreatedTenant) -> dict[str, int]:
    async with runtime.database.tenant_session(tenant.schema) as session:
        ids = {"customer": await insert(session, "customers", name="Ada")}
        ids["product"] = await insert(session, "products", name="API")
        common = {"product_id": ids["product"], "billing_interval": "month"}
        ids["seats"] = await insert(
            session, "plans", name="Seats", pricing_model="per_seat", amount=1000, currency="USD", **common
        )
        ids["bigger"] = await insert(
            session, "plans", name="Bigger", pricing_model="per_seat", amount=2000, currency="USD", **common
        )
        ids["euro"] = await insert(
            session, "plans", name="Euro", pricing_model="flat", amount=900, currency="EUR", **common
        )
        ids["archived"] = await insert(
            session, "plans", name="Old", pricing_model="flat", amount=500, currency="USD", active=False, **common
        )
    return ids


async def events_of(runtime: Runtime, tenant: CreatedTenant) -> list[str]:
    async with runtime.database.tenant_session(tenant.schema) as session:
        return list((await session.execute(text("SELECT type FROM events ORDER BY id"))).scalars())


async def test_a_subscription_starts_now_for_one_period_or_a_trial(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers, "subs")
    ids = await seeded(runtime, tenant)
    body = {"customer_id": ids["customer"], "plan_id": ids["seats"], "quantity": 5, "metadata": {"team": "core"}}
    created = await client.post(PATH, json=body, headers=tenant.headers)
    assert created.status_code == 201, created.text
    shown = created.json()
    assert (shown["status"], shown["quantity"], shown["metadata"]) == ("active", 5, {"team": "core"})
    start, end = (
        datetime.fromisoformat(shown["current_period_start"]),
        datetime.fromisoformat(shown["current_period_end"]),
    )
    assert 28 <= (end - start).days <= 31
    assert shown["sync_status"] == "none"  # no provider account: billplane alone bills it
    # Its first period is invoiced now, in advance; with no account to charge through it stays open
    # for dunning's first attempt.
    [first] = (await client.get("/v1/invoices", headers=tenant.headers)).json()["data"]
    assert (first["subscription_id"], first["billing_reason"], first["number"]) == (
        shown["id"], "subscription_create", "INV-1"
    )  # fmt: skip
    assert (first["status"], first["total"], first["amount_due"], first["currency"]) == ("open", 5000, 5000, "USD")
    assert (first["period_start"], first["period_end"]) == (shown["current_period_start"], shown["current_period_end"])
    [line] = first["lines"]
    assert (line["plan_id"], line["quantity"], line["unit_amount"], line["amount"]) == (ids["seats"], 5, 1000, 5000)
    assert (line["period_start"], line["period_end"]) == (shown["current_period_start"], shown["current_period_end"])

    trial = await client.post(PATH, json=body | {"trial_period_days": 14}, headers=tenant.headers)
    assert trial.json()["status"] == "trialing"
    shown = trial.json()
    assert datetime.fromisoformat(shown["trial_end"]) - datetime.fromisoformat(shown["trial_start"]) == timedelta(14)
    assert shown["current_period_end"] == shown["trial_end"]
    assert await events_of(runtime, tenant) == [
        "subscription.created", "invoice.created", "invoice.finalized",
        "subscription.created",  # a trial is not invoiced: the billing run bills its first paid period
    ]  # fmt: skip
    assert len((await client.get("/v1/invoices", headers=tenant.headers)).json()["data"]) == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"customer_id": 999_999}, "customer_id"),
        ({"plan_id": 999_999}, "plan_id"),
        ({"plan": "archived"}, "plan_id"),
        ({"quantity": 0}, "quantity"),
        ({"payment_method_id": 999_999}, "payment_method_id"),
        ({"trial_period_days": -1}, "trial_period_days"),
    ],
)
async def test_bad_input_is_422_with_the_field_and_writes_nothing(
    client: Client, admin_headers: dict[str, str], runtime: Runtime, change: dict[str, Any], field: str
) -> None:
    tenant = await create_tenant(client, admin_headers, "subsbad")
    ids = await seeded(runtime, tenant)
    body = {"customer_id": ids["customer"], "plan_id": ids["seats"]} | change
    if "plan" in body:
        body["plan_id"] = ids[body.pop("plan")]
    refused = await client.post(PATH, json=body, headers=tenant.headers)
    assert refused.status_code == 422, refused.text
    assert [error["field"] for error in refused.json()["errors"]] == [field]
    assert (await client.get(PATH, headers=tenant.headers)).json()["data"] == []
    assert await events_of(runtime, tenant) == []


async def test_another_currency_than_the_customers_live_subscriptions_is_refused(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers, "subscur")
    ids = await seeded(runtime, tenant)
    first = await client.post(
        PATH, json={"customer_id": ids["customer"], "plan_id": ids["seats"]}, headers=tenant.headers
    )
    assert first.status_code == 201
    euro = await client.post(
        PATH, json={"customer_id": ids["customer"], "plan_id": ids["euro"]}, headers=tenant.headers
    )
    assert euro.status_code == 422
    assert euro.json()["errors"][0]["message"] == f"the customer is billed in USD; plan {ids['euro']} is in EUR"
    change = await client.patch(f"{PATH}/{first.json()['id']}", json={"plan_id": ids["euro"]}, headers=tenant.headers)
    assert change.status_code == 422


ACTIONS = {
    "change": ("PATCH", "", {"quantity": 9}),
    "cancel": ("POST", "/cancel", {}),
    "pause": ("POST", "/pause", {}),
    "resume": ("POST", "/resume", None),
    "undo_cancel": ("POST", "/undo-cancel", None),
}
AFTER = {"change": None, "cancel": "canceled", "pause": "paused", "resume": "active", "undo_cancel": None}


@pytest.mark.parametrize("status", SUBSCRIPTION_STATUSES)
@pytest.mark.parametrize("action", sorted(ACTIONS))
async def test_every_transition_is_allowed_or_refused_by_the_table(
    client: Client, admin_headers: dict[str, str], runtime: Runtime, status: str, action: str
) -> None:
    tenant = await create_tenant(client, admin_headers, "substate")
    ids = await seeded(runtime, tenant)
    async with runtime.database.tenant_session(tenant.schema) as session:
        subscription = await insert(
            session,
            "subscriptions",
            customer_id=ids["customer"],
            plan_id=ids["seats"],
            status=status,
            quantity=2,
            cancel_at_period_end=action == "undo_cancel",  # what it takes back
        )
    method, suffix, body = ACTIONS[action]
    response = await client.request(method, f"{PATH}/{subscription}{suffix}", json=body, headers=tenant.headers)
    shown = (await client.get(f"{PATH}/{subscription}", headers=tenant.headers)).json()
    if status in ALLOWED[action]:
        assert response.status_code == 200, response.text
        expected = AFTER[action] or status
        assert shown["status"] == expected
        assert len(await events_of(runtime, tenant)) == 1
    else:
        assert response.status_code == 409, response.text
        assert response.json()["detail"].startswith(f"a {status} subscription cannot {action.replace('_', ' ')}")
        assert (shown["status"], shown["quantity"]) == (status, 2)  # nothing written
        assert await events_of(runtime, tenant) == []


async def test_changes_now_or_at_period_end_and_cancel_at_period_end(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers, "subchange")
    ids = await seeded(runtime, tenant)
    created = await client.post(
        PATH, json={"customer_id": ids["customer"], "plan_id": ids["seats"]}, headers=tenant.headers
    )
    url = f"{PATH}/{created.json()['id']}"
    later = await client.patch(
        url, json={"plan_id": ids["bigger"], "proration": "at_period_end"}, headers=tenant.headers
    )
    assert (later.json()["plan_id"], later.json()["pending_plan_id"]) == (ids["seats"], ids["bigger"])
    now = await client.patch(url, json={"quantity": 4, "proration": "none"}, headers=tenant.headers)
    assert (now.json()["quantity"], now.json()["pending_plan_id"], now.json()["pending_quantity"]) == (4, None, None)
    ending = await client.post(f"{url}/cancel", json={"at_period_end": True}, headers=tenant.headers)
    assert (ending.json()["status"], ending.json()["cancel_at_period_end"]) == ("active", True)
    # Asked again, with the values it has: nothing changes, so no event (docs/reference/event-types.md).
    written = len(await events_of(runtime, tenant))
    for method, suffix, body in (
        ("POST", "/cancel", {"at_period_end": True}),
        ("PATCH", "", {}),
        ("PATCH", "", {"quantity": 4, "metadata": {}}),
    ):
        same = await client.request(method, f"{url}{suffix}", json=body, headers=tenant.headers)
        assert same.status_code == 200, same.text
    assert len(await events_of(runtime, tenant)) == written
    taken_back = await client.post(f"{url}/undo-cancel", headers=tenant.headers)
    assert (taken_back.status_code, taken_back.json()["cancel_at_period_end"]) == (200, False), taken_back.text
    again = await client.post(f"{url}/undo-cancel", headers=tenant.headers)
    assert again.status_code == 409
    assert again.json()["detail"] == f"subscription {created.json()['id']} has no cancellation to take back"
    assert (await events_of(runtime, tenant))[-2:] == ["subscription.updated", "subscription.updated"]
    await client.post(f"{url}/cancel", json={"at_period_end": True}, headers=tenant.headers)
    past = datetime.fromisoformat(ending.json()["current_period_start"]) - timedelta(days=1)
    paused = await client.post(f"{url}/pause", json={"resume_at": past.isoformat()}, headers=tenant.headers)
    assert paused.status_code == 422
    assert paused.json()["errors"][0]["field"] == "resume_at"


async def test_changes_at_the_period_end_add_up_and_sending_the_current_values_takes_them_back(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers, "subsched")
    ids = await seeded(runtime, tenant)
    body = {"customer_id": ids["customer"], "plan_id": ids["seats"], "quantity": 5}
    url = f"{PATH}/{(await client.post(PATH, json=body, headers=tenant.headers)).json()['id']}"

    async def scheduled(change: dict[str, Any]) -> tuple[Any, Any]:
        response = await client.patch(url, json=change | {"proration": "at_period_end"}, headers=tenant.headers)
        assert response.status_code == 200, response.text
        return response.json()["pending_plan_id"], response.json()["pending_quantity"]

    assert await scheduled({"plan_id": ids["bigger"]}) == (ids["bigger"], None)
    # A quantity sent next keeps the plan scheduled: the period's end bills 3 x Bigger.
    assert await scheduled({"quantity": 3}) == (ids["bigger"], 3)
    preview = await client.post(
        f"{url}/preview", json={"quantity": 3, "proration": "at_period_end"}, headers=tenant.headers
    )
    assert preview.json()["next_period_total"] == 3 * 2000, preview.text
    # The values it has now take the scheduled change back, and the preview shows that too.
    assert await scheduled({"plan_id": ids["seats"], "quantity": 5}) == (None, None)
    preview = await client.post(
        f"{url}/preview", json={"quantity": 5, "proration": "at_period_end"}, headers=tenant.headers
    )
    assert preview.json()["next_period_total"] == 5 * 1000, preview.text


async def test_a_provider_that_bills_the_subscription_takes_any_change_now(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    # billplane's rules for its own billing (usage billed at the period's end, prorations within
    # one billing period) are not the provider's: a change at the period's end is refused there
    # (no billing run here applies it), so leaving a metered plan must be possible now.
    tenant, _, subscription = await tenant_with_subscription(
        client, admin_headers, accounts, worker, 961, billed=FakeState()
    )
    async with worker.database.tenant_session(tenant.schema) as session:
        metered = await insert(
            session, "plans", product_id=1, name="Calls", pricing_model="metered", amount=5, currency="USD",
            billing_interval="month", usage_aggregation="sum",
        )  # fmt: skip
        yearly = await insert(
            session, "plans", product_id=1, name="Yearly", pricing_model="flat", amount=9000, currency="USD",
            billing_interval="year",
        )  # fmt: skip
        await session.execute(text("UPDATE subscriptions SET plan_id = :p"), {"p": metered})
    url = f"{PATH}/{subscription}"
    changed = await client.patch(url, json={"plan_id": yearly}, headers=tenant.headers)
    assert changed.status_code == 200, changed.text
    assert changed.json()["plan_id"] == yearly
    later = await client.patch(url, json={"quantity": 2, "proration": "at_period_end"}, headers=tenant.headers)
    assert later.status_code == 422, later.text
    assert later.json()["errors"][0]["field"] == "proration"


async def test_each_change_reaches_the_provider_through_the_outbox(
    client: Client,
    admin_headers: dict[str, str],
    accounts: StaticAccounts,
    worker: Runtime,
    fake: FakeState,
) -> None:
    tenant = await create_tenant(client, admin_headers, "submirror")
    accounts.add(AccountRow(id=801, tenant_id=tenant.id, tenant_schema=tenant.schema))
    ids = await seeded(worker, tenant)
    created = await client.post(
        PATH, json={"customer_id": ids["customer"], "plan_id": ids["seats"]}, headers=tenant.headers
    )
    assert created.status_code == 201, created.text
    url = f"{PATH}/{created.json()['id']}"
    # Queued before the create has run: it waits for the create, then sends the state of its time.
    await client.patch(url, json={"quantity": 3}, headers=tenant.headers)
    await drain(worker)
    methods = [method for method, _ in fake.calls]
    assert methods.index("create_subscription") < methods.index("update_subscription")
    shown = (await client.get(url, headers=tenant.headers)).json()
    assert fake.payloads[shown["provider_subscription_id"]]["quantity"] == 3
    for step, body in (("pause", {}), ("resume", None), ("cancel", {"at_period_end": True})):
        await client.post(f"{url}/{step}", json=body, headers=tenant.headers)
        await drain(worker)
        assert fake.calls[-1][0] == f"{step}_subscription"
    assert fake.payloads[shown["provider_subscription_id"]]["at_period_end"] is True
    await client.post(f"{url}/undo-cancel", headers=tenant.headers)
    await drain(worker)
    assert fake.calls[-1][0] == "undo_cancel"
    # Scheduled again and taken back again before the worker ran: the rows send the latest state,
    # so the cancellation is sent to no one and the provider is told to keep it.
    await client.post(f"{url}/cancel", json={"at_period_end": True}, headers=tenant.headers)
    await client.post(f"{url}/undo-cancel", headers=tenant.headers)
    calls = len(fake.calls)
    await drain(worker)
    assert [method for method, _ in fake.calls[calls:]] == ["undo_cancel"]
    # Taken back and scheduled again: the cancellation is sent, the taking back is not.
    await client.post(f"{url}/cancel", json={"at_period_end": True}, headers=tenant.headers)
    await drain(worker)
    await client.post(f"{url}/undo-cancel", headers=tenant.headers)
    await client.post(f"{url}/cancel", json={"at_period_end": True}, headers=tenant.headers)
    calls = len(fake.calls)
    await drain(worker)
    assert [method for method, _ in fake.calls[calls:]] == ["cancel_subscription"]
    # Asked again: no event (nothing changes), but sent again (its row might have failed).
    async with worker.database.tenant_session(tenant.schema) as session:
        written = await session.scalar(text("SELECT count(*) FROM events"))
    again = await client.post(f"{url}/cancel", json={"at_period_end": True}, headers=tenant.headers)
    assert again.status_code == 200, again.text
    calls = len(fake.calls)
    await drain(worker)
    assert [method for method, _ in fake.calls[calls:]] == ["cancel_subscription"]
    async with worker.database.tenant_session(tenant.schema) as session:
        assert await session.scalar(text("SELECT count(*) FROM events")) == written

    shown = (await client.get(url, headers=tenant.headers)).json()
    assert (shown["sync_status"], shown["provider_account_id"], shown["status"]) == ("synced", 801, "active")
    assert fake.payloads[shown["provider_subscription_id"]]["at_period_end"] is True


async def test_a_preview_shows_the_prorations_and_the_next_invoice_and_writes_nothing(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers, "subpreview")
    ids = await seeded(runtime, tenant)
    body = {"customer_id": ids["customer"], "plan_id": ids["seats"], "quantity": 2}
    created = (await client.post(PATH, json=body, headers=tenant.headers)).json()
    url = f"{PATH}/{created['id']}"

    shown = await client.post(f"{url}/preview", json={"quantity": 4}, headers=tenant.headers)
    assert shown.status_code == 200, shown.text
    preview = shown.json()
    credit, charge = preview["lines"]
    assert credit["amount"] < 0 < charge["amount"]
    assert (credit["proration"], charge["proration"]) == (True, True)
    # Changed moments after the period started: almost all of 2 seats back, almost all of 4 charged.
    assert 1990 <= -credit["amount"] <= 2000
    assert 3980 <= charge["amount"] <= 4000
    assert preview["total"] == credit["amount"] + charge["amount"]
    assert (preview["next_period_total"], preview["currency"]) == (4000, "USD")
    assert preview["next_period_start"] == created["current_period_end"]
    # Unit prices as invoice lines show them: an integer when whole, the exact decimal always.
    [next_line] = preview["next_period_lines"]
    assert (next_line["unit_amount"], next_line["unit_amount_decimal"]) == (1000, "1000")

    later = await client.post(
        f"{url}/preview", json={"plan_id": ids["bigger"], "proration": "at_period_end"}, headers=tenant.headers
    )
    assert (later.json()["lines"], later.json()["next_period_total"]) == ([], 4000)  # 2 seats x 20.00
    assert (await client.get(url, headers=tenant.headers)).json()["quantity"] == 2  # nothing written
    assert await events_of(runtime, tenant) == ["subscription.created", "invoice.created", "invoice.finalized"]
    euro = await client.post(f"{url}/preview", json={"plan_id": ids["euro"]}, headers=tenant.headers)
    assert euro.status_code == 422


async def test_a_change_to_another_billing_period_is_not_prorated_into_this_one(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    """Monthly to yearly, prorated now, priced the rest of the month at a month's share of the
    yearly price. Refused (422 naming proration, nothing written, the preview too); at period end
    it is taken."""
    tenant = await create_tenant(client, admin_headers, "subyearly")
    ids = await seeded(runtime, tenant)
    async with runtime.database.tenant_session(tenant.schema) as session:
        yearly = await insert(
            session, "plans", name="Yearly", pricing_model="per_seat", amount=10000, currency="USD",
            product_id=ids["product"], billing_interval="year",
        )  # fmt: skip
    body = {"customer_id": ids["customer"], "plan_id": ids["seats"], "quantity": 2}
    created = (await client.post(PATH, json=body, headers=tenant.headers)).json()
    url = f"{PATH}/{created['id']}"

    shown = await client.post(f"{url}/preview", json={"plan_id": yearly}, headers=tenant.headers)
    changed = await client.patch(url, json={"plan_id": yearly}, headers=tenant.headers)
    later = await client.patch(url, json={"plan_id": yearly, "proration": "at_period_end"}, headers=tenant.headers)

    for refused in (shown, changed):
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["field"] == "proration"
    assert later.status_code == 200, later.text
    assert (later.json()["plan_id"], later.json()["pending_plan_id"]) == (ids["seats"], yearly)
    async with runtime.database.tenant_session(tenant.schema) as session:
        assert await session.scalar(text("SELECT count(*) FROM invoice_items")) == 0


async def test_a_change_during_the_trial_prorates_nothing(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers, "subtrial")
    ids = await seeded(runtime, tenant)
    body = {"customer_id": ids["customer"], "plan_id": ids["seats"], "quantity": 2, "trial_period_days": 7}
    created = (await client.post(PATH, json=body, headers=tenant.headers)).json()
    url = f"{PATH}/{created['id']}"
    preview = (await client.post(f"{url}/preview", json={"quantity": 4}, headers=tenant.headers)).json()
    assert (preview["lines"], preview["total"], preview["next_period_total"]) == ([], 0, 4000)
    assert (await client.patch(url, json={"quantity": 4}, headers=tenant.headers)).status_code == 200
    async with runtime.database.tenant_session(tenant.schema) as session:
        assert await session.scalar(text("SELECT count(*) FROM invoice_items")) == 0
