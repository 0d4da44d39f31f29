"""A provider's word against billplane's own changes to a mirrored subscription.

A change made here (pause, resume, cancel at the period end and its undoing, a plan or quantity
change) is queued for the provider and sent by a worker; each row sends the subscription as it is
when the row runs. A provider event that still shows the provider's state from before the change
must not undo it here: the row would then send nothing, or the old value, and the provider would
go on billing as before. An event that arrives while the change is queued waits (it stays
``received``) until the change is sent, then the time of the change decides: dropped, its news
would be lost when the provider has nothing more to say. And where billplane bills a subscription
itself, its status (dunning's `past_due` and `unpaid`) is billplane's, not the provider's.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from billplane.billing.run import BillingRun
from billplane.runtime import Runtime
from billplane.sync.refs import EventRef
from billplane.webhooks.apply import EventApplier
from tests.conftest import CreatedTenant, create_tenant
from tests.platform.billing_seed import insert, subscribed
from tests.platform.sync_fakes import BILLED, AccountRow, FakeState, StaticAccounts, drain
from tests.platform.test_provider_billing_events import rows
from tests.platform.test_webhooks import Client, deliver, event, stored, tenant_with_subscription

OLDER = "older than billplane's last change to it, which the provider had not taken then"
WAITED = "not applied after a day of waiting: billplane's change to it is not at the provider yet"


def state(status: str, **more: Any) -> dict[str, Any]:
    return {"subscription": {"provider_id": "sub_1", "status": status} | more}


async def applied_now(worker: Runtime, tenant: CreatedTenant, event_id: str, billed: frozenset[str]) -> str:
    """Apply the stored event at once, before the queued outbox row runs (jobs run in any order)."""
    async with worker.database.tenant_session(tenant.schema) as session:
        row = await session.scalar(text("SELECT id FROM provider_events WHERE event_id = :e"), {"e": event_id})
    return await EventApplier(worker.database, billed).apply(EventRef(tenant.id, tenant.schema, int(row)))


async def subscription(worker: Runtime, tenant: CreatedTenant, subscription_id: int) -> dict[str, Any]:
    [row] = await rows(worker, tenant, f"SELECT * FROM subscriptions WHERE id = {subscription_id}")
    return row


def sent(fake: FakeState) -> list[str]:
    return [method for method, _ in fake.calls]


async def outcomes(worker: Runtime, tenant: CreatedTenant) -> dict[str, tuple[str, str | None]]:
    return {row["event_id"]: (row["status"], row["detail"]) for row in await stored(worker, tenant)}


async def drained(worker: Runtime) -> None:
    """Run the queued work, then again: an event tried while a change was queued waits for the
    sweep (the first drain's ran before the change was sent, or after, in any order)."""
    await drain(worker)
    await drain(worker)


# (what the tenant does first, sent before the change; the change; the provider's state from before it)
CHANGES = {
    "cancel at the period end": (None, ("cancel", {"at_period_end": True}), state("active")),
    "pause": (None, ("pause", {}), state("active")),
    "resume": (("pause", {}), ("resume", None), state("paused")),
    "undo cancel": (
        ("cancel", {"at_period_end": True}),
        ("undo-cancel", None),
        state("active", cancel_at_period_end=True),
    ),
}
SENT = {"cancel at the period end": "cancel_subscription", "pause": "pause_subscription"}
SENT |= {"resume": "resume_subscription", "undo cancel": "undo_cancel"}


@pytest.mark.parametrize("billed", [False, True], ids=["billplane bills", "the provider bills"])
@pytest.mark.parametrize("change", sorted(CHANGES))
async def test_a_provider_event_does_not_undo_a_change_still_queued_for_it(
    client: Client,
    admin_headers: dict[str, str],
    accounts: StaticAccounts,
    worker: Runtime,
    *,
    fake: FakeState,
    change: str,
    billed: bool,
) -> None:
    # One account per case: the accounts outlive a test. Where the provider bills the
    # subscription its status is taken, and a pause or resume is at stake, not only the flag.
    account_id = (941 if billed else 901) + sorted(CHANGES).index(change)
    tenant, account, subscription_id = await tenant_with_subscription(
        client, admin_headers, accounts, worker, account_id, billed=fake if billed else None
    )
    url = f"/v1/subscriptions/{subscription_id}"
    first, (action, body), before = CHANGES[change]
    if first is not None:
        assert (await client.post(f"{url}/{first[0]}", json=first[1], headers=tenant.headers)).status_code == 200
        await drain(worker)  # sent; the provider's word about it comes late, below
    occurred = datetime.now(UTC) - timedelta(seconds=1)
    assert (await client.post(f"{url}/{action}", json=body, headers=tenant.headers)).status_code == 200
    made = await subscription(worker, tenant, subscription_id)
    wanted = {key: made[key] for key in ("status", "cancel_at_period_end")}

    await deliver(client, account, [event("evt_1", "subscription.updated", "sub_1", occurred, **before)])
    providers = frozenset({BILLED} if billed else ())
    # While the change is queued the event waits, received: nothing of it is taken, nor dropped.
    assert await applied_now(worker, tenant, "evt_1", providers) == "deferred"
    assert (await outcomes(worker, tenant))["evt_1"] == ("received", None)
    await drained(worker)
    shown = await subscription(worker, tenant, subscription_id)
    assert {key: shown[key] for key in wanted} == wanted
    assert sent(fake)[-1] == SENT[change]
    # Once the change is sent, the event is older than it: ignored. So is the same news again.
    await deliver(client, account, [event("evt_2", "subscription.updated", "sub_1", occurred, **before)])
    await drain(worker)
    shown = await subscription(worker, tenant, subscription_id)
    assert {key: shown[key] for key in wanted} == wanted
    assert await outcomes(worker, tenant) == {"evt_1": ("ignored", OLDER), "evt_2": ("ignored", OLDER)}

    # News after the change reached the provider is the provider's, and taken.
    later = datetime.now(UTC) + timedelta(seconds=1)
    await deliver(client, account, [event("evt_3", "subscription.canceled", "sub_1", later, **state("canceled"))])
    await drain(worker)
    assert (await subscription(worker, tenant, subscription_id))["status"] == "canceled"


async def test_news_that_arrives_while_a_change_is_queued_is_taken_once_it_is_sent(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime, fake: FakeState
) -> None:
    # Paused and resumed before the worker ran: the pause row finds nothing to pause, and the
    # resume changes nothing at the provider, which has nothing more to say. Dropped, the
    # past_due it reported meanwhile would be lost for good.
    tenant, account, subscription_id = await tenant_with_subscription(
        client, admin_headers, accounts, worker, 951, billed=fake
    )
    url = f"/v1/subscriptions/{subscription_id}"
    for action in ("pause", "resume"):
        assert (await client.post(f"{url}/{action}", json={}, headers=tenant.headers)).status_code == 200
    late = event("evt_1", "subscription.updated", "sub_1", datetime.now(UTC), **state("past_due"))
    await deliver(client, account, [late])
    while_queued = await applied_now(worker, tenant, "evt_1", frozenset({BILLED}))
    await drained(worker)

    assert (await subscription(worker, tenant, subscription_id))["status"] == "past_due"
    assert (await outcomes(worker, tenant))["evt_1"] == ("applied", None)
    assert while_queued == "deferred"
    assert sent(fake) == ["resume_subscription"]
    # The pause, sent to no one, is recorded so: no provider call was made for its row.
    kinds = "SELECT kind, calls FROM outbox WHERE kind LIKE 'subscription.%' ORDER BY id"
    assert await rows(worker, tenant, kinds) == [
        {"kind": "subscription.pause", "calls": 0},
        {"kind": "subscription.resume", "calls": 1},
    ]


async def test_the_providers_event_of_the_second_a_change_was_made_is_not_older_than_it(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime, fake: FakeState
) -> None:
    # Stripe's event times are whole seconds; the row's created_at has microseconds. Its own event
    # about the pause, of the same second, came after the pause, not before.
    tenant, account, subscription_id = await tenant_with_subscription(
        client, admin_headers, accounts, worker, 952, billed=fake
    )
    paused = await client.post(f"/v1/subscriptions/{subscription_id}/pause", json={}, headers=tenant.headers)
    assert paused.status_code == 200, paused.text
    await drain(worker)
    [row] = await rows(worker, tenant, "SELECT created_at, status FROM outbox WHERE kind = 'subscription.pause'")
    assert row["status"] == "done"
    second = row["created_at"].replace(microsecond=0)
    confirmed = event("evt_1", "subscription.updated", "sub_1", second, **state("paused", quantity=3))
    await deliver(client, account, [confirmed])
    await drain(worker)

    assert (await outcomes(worker, tenant))["evt_1"] == ("applied", None)
    shown = await subscription(worker, tenant, subscription_id)
    assert (shown["status"], shown["quantity"], shown["provider_event_at"]) == ("paused", 3, second)


async def test_a_change_its_row_sent_to_no_one_does_not_make_the_providers_word_older(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime, fake: FakeState
) -> None:
    tenant, account, subscription_id = await tenant_with_subscription(
        client, admin_headers, accounts, worker, 953, billed=fake
    )
    occurred = datetime.now(UTC) - timedelta(seconds=1)
    paused = await client.post(f"/v1/subscriptions/{subscription_id}/pause", json={}, headers=tenant.headers)
    assert paused.status_code == 200, paused.text
    # Live again before its row ran (here by hand): the row finds nothing to pause, and calls no one.
    await rows(worker, tenant, f"UPDATE subscriptions SET status = 'active' WHERE id = {subscription_id} RETURNING id")
    await drain(worker)
    assert sent(fake) == []
    await deliver(client, account, [event("evt_1", "subscription.updated", "sub_1", occurred, **state("past_due"))])
    await drain(worker)

    # The provider never heard of the pause: its word from before it is not older than any change.
    assert (await outcomes(worker, tenant))["evt_1"] == ("applied", None)
    assert (await subscription(worker, tenant, subscription_id))["status"] == "past_due"


async def test_an_event_that_waited_a_day_for_a_change_to_be_sent_is_ignored(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime, fake: FakeState
) -> None:
    # A row stuck pending (the provider refusing it, retried for days) holds no event for ever.
    tenant, account, subscription_id = await tenant_with_subscription(
        client, admin_headers, accounts, worker, 954, billed=fake
    )
    paused = await client.post(f"/v1/subscriptions/{subscription_id}/pause", json={}, headers=tenant.headers)
    assert paused.status_code == 200, paused.text
    await deliver(
        client, account, [event("evt_1", "subscription.updated", "sub_1", datetime.now(UTC), **state("past_due"))]
    )
    aged = "UPDATE provider_events SET received_at = now() - interval '25 hours' RETURNING id"
    assert await applied_now(worker, tenant, "evt_1", frozenset({BILLED})) == "deferred"
    await rows(worker, tenant, aged)

    assert await applied_now(worker, tenant, "evt_1", frozenset({BILLED})) == "ignored"
    assert (await outcomes(worker, tenant))["evt_1"] == ("ignored", WAITED)
    await drain(worker)  # the pause is sent at last; the event stays ignored
    assert (await outcomes(worker, tenant))["evt_1"] == ("ignored", WAITED)
    assert (await subscription(worker, tenant, subscription_id))["status"] == "paused"


async def test_a_quantity_change_reaches_a_provider_that_bills_it_despite_older_news(
    client: Client,
    admin_headers: dict[str, str],
    accounts: StaticAccounts,
    worker: Runtime,
    fake: FakeState,
) -> None:
    tenant, account, subscription_id = await tenant_with_subscription(
        client, admin_headers, accounts, worker, 911, billed=fake
    )
    occurred = datetime.now(UTC) - timedelta(seconds=30)
    changed = await client.patch(f"/v1/subscriptions/{subscription_id}", json={"quantity": 5}, headers=tenant.headers)
    assert changed.json()["quantity"] == 5, changed.text
    older = state("active", quantity=1)
    await deliver(client, account, [event("evt_1", "subscription.updated", "sub_1", occurred, **older)])
    assert await applied_now(worker, tenant, "evt_1", frozenset({BILLED})) == "deferred"
    await drained(worker)
    assert (await subscription(worker, tenant, subscription_id))["quantity"] == 5
    assert fake.payloads["sub_1"]["quantity"] == 5  # the provider was sent the change, not the old quantity
    assert (await outcomes(worker, tenant))["evt_1"] == ("ignored", OLDER)


async def test_an_unpaid_subscription_billplane_bills_stays_unpaid_whatever_its_provider_says(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    # The provider (the sandbox, here its fake) does not bill it: billplane's dunning made it unpaid.
    # Taken as active, the next billing run would bill every period that ended while it was unpaid.
    tenant = await create_tenant(client, admin_headers, "dunned")
    account = accounts.add(AccountRow(id=921, tenant_id=tenant.id, tenant_schema=tenant.schema))
    now = datetime.now(UTC)
    start, end = now - timedelta(days=95), now - timedelta(days=65)
    async with worker.database.tenant_session(tenant.schema) as session:
        customer, subscription_id = await subscribed(
            session, status="unpaid", provider="fake", provider_account_id=account.id,
            provider_subscription_id="sub_1", current_period_start=start, current_period_end=end,
            billing_cycle_anchor=start,
        )  # fmt: skip
        await insert(
            session, "invoices", customer_id=customer, subscription_id=subscription_id, status="open",
            currency="USD", subtotal=1000, total=1000, number="INV-1", attempt_count=4, period_start=start,
            period_end=end,
        )  # fmt: skip
    for event_id, status in (("evt_1", "active"), ("evt_2", "past_due")):
        await deliver(client, account, [event(event_id, "subscription.updated", "sub_1", now, **state(status))])
        await drain(worker)
    await BillingRun(worker.database, None).run()

    assert (await subscription(worker, tenant, subscription_id))["status"] == "unpaid"
    assert await rows(worker, tenant, "SELECT number FROM invoices") == [{"number": "INV-1"}]
    outcomes = {row["event_id"]: (row["status"], row["detail"]) for row in await stored(worker, tenant)}
    assert outcomes["evt_1"] == ("ignored", "billplane bills this subscription: its status is billplane's")
    # The end of it at the provider is taken, as ever.
    later = now + timedelta(seconds=1)
    await deliver(client, account, [event("evt_3", "subscription.canceled", "sub_1", later, **state("canceled"))])
    await drain(worker)
    assert (await subscription(worker, tenant, subscription_id))["status"] == "canceled"


async def test_a_change_at_the_period_end_is_refused_where_the_provider_bills(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    # The provider bills its periods, so no billing run here applies a pending change at their end.
    tenant, _, subscription_id = await tenant_with_subscription(
        client, admin_headers, accounts, worker, 912, billed=FakeState()
    )
    body = {"quantity": 5, "proration": "at_period_end"}
    refused = await client.patch(f"/v1/subscriptions/{subscription_id}", json=body, headers=tenant.headers)
    assert refused.status_code == 422, refused.text
    [error] = refused.json()["errors"]
    assert error["field"] == "proration"
    assert (await subscription(worker, tenant, subscription_id))["pending_quantity"] is None


async def test_a_quantity_the_database_refuses_is_not_taken_and_the_rest_is(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    # Stripe allows items of quantity 0; billplane's quantities are 1 and more.
    tenant, account, subscription_id = await tenant_with_subscription(
        client, admin_headers, accounts, worker, 913, billed=FakeState()
    )
    ended = state("canceled", quantity=0)
    await deliver(client, account, [event("evt_1", "subscription.updated", "sub_1", datetime.now(UTC), **ended)])
    await drain(worker)
    assert [(row["status"], row["detail"]) for row in await stored(worker, tenant)] == [("applied", None)]
    shown = await subscription(worker, tenant, subscription_id)
    assert (shown["status"], shown["quantity"]) == ("canceled", 1)
