"""What a provider's webhook changes is an event of billplane's own, in GET /v1/events.

A subscription's status change is named after the status it entered (``subscription.past_due``,
``subscription.canceled``, ...), a provider-issued invoice gets the events billplane's own
invoices have, and a customer deleted at the provider shows it lost its provider id. Each event's
data is the object as the API shows it afterwards; what changes nothing (a repeated status, an
older event) emits nothing.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import text

from billplane.customers import provider_ids
from billplane.runtime import Runtime
from tests.conftest import create_tenant
from tests.platform.billing_seed import insert
from tests.platform.sync_fakes import AccountRow, FakeState, StaticAccounts, drain
from tests.platform.test_emitted_customers_and_catalog import listed, shown, types_of
from tests.platform.test_provider_billing_events import invoice
from tests.platform.test_webhooks import T0, Client, deliver, event, stored, tenant_with_subscription


def state(status: str, **more: Any) -> dict[str, Any]:
    return {"subscription": {"provider_id": "sub_1", "status": status} | more}


async def test_a_providers_subscription_changes_are_events_named_after_the_status_entered(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    # A provider that bills it: its statuses are its word (billplane's own, for one it bills).
    tenant, account, subscription = await tenant_with_subscription(
        client, admin_headers, accounts, worker, 801, billed=FakeState()
    )
    path = f"/v1/subscriptions/{subscription}"

    await deliver(client, account, [event("evt_1", "subscription.updated", "sub_1", T0, **state("past_due"))])
    await drain(worker)
    after_past_due = await shown(client, tenant, path)
    # The provider says the same again, later: nothing changed, no event.
    await deliver(
        client, account, [event("evt_2", "subscription.updated", "sub_1", T0 + timedelta(1), **state("past_due"))]
    )
    # An older event is ignored: nothing changed, no event.
    await deliver(
        client, account, [event("evt_0", "subscription.updated", "sub_1", T0 - timedelta(1), **state("active"))]
    )
    await drain(worker)
    # Only the provider's watermark moved (updated_at with it): nothing the tenant would see as a change.
    assert (await shown(client, tenant, path)) | {"updated_at": None} == after_past_due | {"updated_at": None}

    await deliver(
        client, account, [event("evt_3", "subscription.updated", "sub_1", T0 + timedelta(2), **state("active"))]
    )
    await drain(worker)
    after_recovery = await shown(client, tenant, path)
    ending = state("active", cancel_at_period_end=True)
    await deliver(client, account, [event("evt_4", "subscription.updated", "sub_1", T0 + timedelta(3), **ending)])
    await drain(worker)
    after_flag = await shown(client, tenant, path)
    # A cancellation without the subscription's state: billplane knows what it means.
    await deliver(client, account, [event("evt_5", "subscription.canceled", "sub_1", T0 + timedelta(4))])
    await drain(worker)
    after_cancel = await shown(client, tenant, path)

    events = await listed(client, tenant, "subscription", subscription)
    assert types_of(events) == [
        "subscription.past_due",
        "subscription.recovered",
        "subscription.updated",
        "subscription.canceled",
    ]
    assert [shown_["data"] for shown_ in events] == [after_past_due, after_recovery, after_flag, after_cancel]
    assert (after_past_due["status"], after_flag["cancel_at_period_end"], after_cancel["status"]) == (
        "past_due",
        True,
        "canceled",
    )
    outcomes = {row["event_id"]: row["status"] for row in await stored(worker, tenant)}
    assert outcomes == {f"evt_{n}": "applied" for n in (1, 2, 3, 4, 5)} | {"evt_0": "ignored"}


async def test_a_customer_deleted_at_the_provider_is_a_customer_update(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers, "emit")
    account = accounts.add(AccountRow(id=802, tenant_id=tenant.id, tenant_schema=tenant.schema))
    async with worker.database.tenant_session(tenant.schema) as session:
        kept = await insert(session, "customers", name="Ada")
        gone = await insert(session, "customers", name="Bob")
        await provider_ids.record(session, kept, "fake", account.id, "cus_kept")
        await provider_ids.record(session, gone, "fake", account.id, "cus_gone")
    before = await shown(client, tenant, f"/v1/customers/{kept}")
    assert [ref["id"] for ref in before["provider_ids"]] == ["cus_kept"]
    assert (await client.delete(f"/v1/customers/{gone}", headers=tenant.headers)).status_code == 204

    await deliver(client, account, [event("evt_k", "customer.deleted", "cus_kept", T0)])
    await deliver(client, account, [event("evt_g", "customer.deleted", "cus_gone", T0)])
    await drain(worker)

    after = await shown(client, tenant, f"/v1/customers/{kept}")
    assert after["provider_ids"] == []
    [updated] = await listed(client, tenant, "customer", kept)
    assert (updated["type"], updated["data"]) == ("customer.updated", after)
    # One deleted here first is gone from the API: its provider id goes, with no event to show.
    assert types_of(await listed(client, tenant, "customer", gone)) == ["customer.deleted"]
    assert {row["status"] for row in await stored(worker, tenant)} == {"applied"}


async def _invoice_id(runtime: Runtime, schema: str) -> int:
    async with runtime.database.tenant_session(schema) as session:
        found = await session.scalar(text("SELECT id FROM invoices WHERE provider_invoice_id = 'in_1'"))
    assert isinstance(found, int)
    return found


async def test_a_provider_issued_invoice_has_the_events_billplanes_own_invoices_have(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    tenant, account, _ = await tenant_with_subscription(
        client, admin_headers, accounts, worker, 803, billed=FakeState()
    )

    await deliver(client, account, [event("evt_1", "invoice.finalized", "in_1", T0, **invoice("open", total=1500))])
    await drain(worker)
    invoice_id = await _invoice_id(worker, tenant.schema)
    path = f"/v1/invoices/{invoice_id}"
    after_finalize = await shown(client, tenant, path)
    events = await listed(client, tenant, "invoice", invoice_id)
    assert types_of(events) == ["invoice.created", "invoice.finalized"]
    assert [shown_["data"] for shown_ in events] == [after_finalize, after_finalize]

    # The provider corrects the amount before collecting: an update.
    await deliver(
        client, account, [event("evt_2", "invoice.finalized", "in_1", T0 + timedelta(1), **invoice("open", total=1800))]
    )
    await drain(worker)
    after_correction = await shown(client, tenant, path)
    declined = invoice(
        "open", total=1800, provider_payment_id="pi_1", failure_code="card_declined", failure_message="No."
    )
    await deliver(client, account, [event("evt_3", "invoice.payment_failed", "in_1", T0 + timedelta(2), **declined)])
    await drain(worker)
    after_decline = await shown(client, tenant, path)
    paid = invoice("paid", total=1800, paid=1800)
    await deliver(client, account, [event("evt_4", "invoice.paid", "in_1", T0 + timedelta(3), **paid)])
    await drain(worker)
    after_payment = await shown(client, tenant, path)
    # The same again, later, and an older copy of the finalization: no change, no event.
    await deliver(client, account, [event("evt_5", "invoice.paid", "in_1", T0 + timedelta(4), **paid)])
    await deliver(client, account, [event("evt_0", "invoice.finalized", "in_1", T0 - timedelta(1), **invoice("open"))])
    await drain(worker)
    unchanged = await shown(client, tenant, path)
    assert unchanged | {"updated_at": None} == after_payment | {"updated_at": None}  # the watermark moved only

    events = await listed(client, tenant, "invoice", invoice_id)
    assert types_of(events) == [
        "invoice.created",
        "invoice.finalized",
        "invoice.updated",
        "invoice.payment_failed",
        "invoice.paid",
    ]
    assert (events[2]["data"], events[4]["data"]) == (after_correction, after_payment)
    assert after_correction["total"] == 1800
    assert after_payment["status"] == "paid"
    [payment] = await listed(client, tenant, "payment")
    assert (payment["type"], payment["data"]["status"]) == ("payment.failed", "failed")
    failure = {"code": "card_declined", "message": "No.", "payment_id": payment["object_id"]}
    assert events[3]["data"] == after_decline | {"payment_failure": failure}
