"""Provider-billed state from webhooks: invoices, payments, refunds, next actions, unknown objects."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from billplane.runtime import Runtime
from tests.conftest import CreatedTenant
from tests.platform.billing_seed import insert
from tests.platform.sync_fakes import UNREACHABLE_HEADER, FakeState, StaticAccounts, drain
from tests.platform.test_webhooks import (
    T0,
    Client,
    deliver,
    event,
    stored,
    tenant_with_subscription,
)


def invoice(status: str, *, total: int = 1500, paid: int = 0, **more: Any) -> dict[str, Any]:
    state = {
        "provider_id": "in_1",
        "status": status,
        "currency": "USD",
        "total": total,
        "amount_paid": paid,
        "amount_due": total - paid,
        "provider_subscription_id": "sub_1",
        "provider_customer_id": "cus_1",
    }
    return {"invoice": state | more}


async def rows(runtime: Runtime, tenant: CreatedTenant, query: str) -> list[dict[str, Any]]:
    async with runtime.database.tenant_session(tenant.schema) as session:
        return [dict(row._mapping) for row in await session.execute(text(query))]  # noqa: SLF001


async def test_a_provider_invoice_is_mirrored_and_a_decline_keeps_it_open(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    # A provider that bills its subscriptions (Stripe): one that does not sends no invoice of theirs.
    tenant, account, subscription = await tenant_with_subscription(
        client, admin_headers, accounts, worker, 601, billed=FakeState()
    )
    declined = invoice("open", provider_payment_id="pi_1", failure_code="insufficient_funds", failure_message="No.")
    await deliver(client, account, [event("evt_1", "invoice.finalized", "in_1", T0, **invoice("open"))])
    await deliver(client, account, [event("evt_2", "invoice.payment_failed", "in_1", T0 + timedelta(1), **declined)])
    await drain(worker)

    [mirrored] = await rows(worker, tenant, "SELECT * FROM invoices")
    assert (mirrored["subscription_id"], mirrored["status"], mirrored["total"]) == (subscription, "open", 1500)
    assert (mirrored["provider"], mirrored["provider_account_id"], mirrored["provider_invoice_id"]) == (
        "billed",
        account.id,
        "in_1",
    )
    assert mirrored["number"] is None  # numbers stay billplane's own, gapless
    [failed] = await rows(worker, tenant, "SELECT * FROM payments")
    assert (failed["status"], failed["failure_code"], failed["amount"]) == ("failed", "insufficient_funds", 1500)
    assert failed["invoice_id"] == mirrored["id"]

    # The provider retries the same payment and it succeeds; then the invoice is paid.
    retried = {"payment": {"provider_payment_id": "pi_1", "status": "succeeded", "provider_invoice_id": "in_1"}}
    paid = invoice("paid", paid=1500)
    await deliver(client, account, [event("evt_3", "payment.succeeded", "pi_1", T0 + timedelta(2), **retried)])
    await deliver(client, account, [event("evt_4", "invoice.paid", "in_1", T0 + timedelta(3), **paid)])
    # A late copy of the finalization must not reopen it.
    await deliver(client, account, [event("evt_0", "invoice.finalized", "in_1", T0 - timedelta(1), **invoice("open"))])
    await drain(worker)

    [settled] = await rows(worker, tenant, "SELECT status, failure_code FROM payments")
    assert settled == {"status": "succeeded", "failure_code": None}
    [mirrored] = await rows(worker, tenant, "SELECT status, amount_paid, paid_at FROM invoices")
    assert (mirrored["status"], mirrored["amount_paid"]) == ("paid", 1500)
    assert mirrored["paid_at"] is not None
    outcomes = {row["event_id"]: (row["status"], row["detail"]) for row in await stored(worker, tenant)}
    assert outcomes["evt_0"] == ("ignored", "older than the last event applied to this invoice")

    # And a failure arriving after the success changes nothing.
    late = {"payment": {"provider_payment_id": "pi_1", "status": "failed", "failure_code": "expired_card"}}
    await deliver(client, account, [event("evt_5", "payment.failed", "pi_1", T0 + timedelta(4), **late)])
    await drain(worker)
    assert await rows(worker, tenant, "SELECT status FROM payments") == [{"status": "succeeded"}]


async def test_an_invoice_paid_never_goes_back_to_open_on_an_event_of_the_same_second(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    # Stripe's event times are whole seconds: an invoice finalized and paid in one request has two
    # events of the same second, which may arrive in either order.
    tenant, account, _ = await tenant_with_subscription(
        client, admin_headers, accounts, worker, 603, billed=FakeState()
    )
    await deliver(client, account, [event("evt_2", "invoice.paid", "in_1", T0, **invoice("paid", paid=1500))])
    await deliver(client, account, [event("evt_1", "invoice.finalized", "in_1", T0, **invoice("open"))])
    await drain(worker)
    [mirrored] = await rows(worker, tenant, "SELECT status, amount_paid FROM invoices")
    assert mirrored == {"status": "paid", "amount_paid": 1500}
    outcomes = {row["event_id"]: (row["status"], row["detail"]) for row in await stored(worker, tenant)}
    assert outcomes["evt_1"] == ("ignored", "the invoice is paid already: a provider's invoice never goes back to open")
    assert [row["type"] for row in await rows(worker, tenant, "SELECT type FROM events ORDER BY id")][-1] == (
        "invoice.paid"
    )


async def test_objects_billplane_does_not_know_are_stored_acknowledged_and_reported(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    tenant, account, _ = await tenant_with_subscription(client, admin_headers, accounts, worker, 602)
    stranger = invoice("open", provider_subscription_id="sub_made_at_the_provider", provider_customer_id="cus_x")
    response = await deliver(client, account, [event("evt_1", "invoice.finalized", "in_9", T0, **stranger)])
    assert response.status_code == 200
    await drain(worker)

    assert await rows(worker, tenant, "SELECT id FROM invoices") == []
    listed = await client.get("/v1/provider-events", params={"status": "ignored"}, headers=tenant.headers)
    assert listed.status_code == 200, listed.text
    [shown] = listed.json()["data"]
    assert (shown["event_id"], shown["type"], shown["status"]) == ("evt_1", "invoice.finalized", "ignored")
    assert shown["detail"] == "the invoice's subscription and customer are unknown at this account"
    assert "raw_body" not in shown
    one = await client.get(f"/v1/provider-events/{shown['id']}", headers=tenant.headers)
    assert one.json() == shown
    applied = await client.get("/v1/provider-events", params={"status": "applied"}, headers=tenant.headers)
    assert applied.json()["data"] == []


async def paid_at_provider(runtime: Runtime, tenant: CreatedTenant, account: int) -> None:
    """The tenant's customer paid 1000 USD at the provider: payment ``pi_7``, succeeded."""
    async with runtime.database.tenant_session(tenant.schema) as session:
        customer = await session.scalar(text("SELECT id FROM customers"))
        await insert(
            session, "payments", customer_id=customer, amount=1000, currency="USD", status="succeeded",
            provider="fake", provider_account_id=account, provider_payment_id="pi_7",
        )  # fmt: skip


@pytest.mark.parametrize("kind", ["invoice.voided", "invoice.marked_uncollectible"])
async def test_an_invoice_voided_or_written_off_at_the_provider_is_no_longer_open_here(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime, kind: str
) -> None:
    """Before, only finalized, paid and failed invoices were learnt: one voided at Stripe (its
    Dashboard, its dunning's last step, a pause) stayed open here, its amount shown as due."""
    status = "void" if kind == "invoice.voided" else "uncollectible"
    tenant, account, _ = await tenant_with_subscription(
        client, admin_headers, accounts, worker, 607, billed=FakeState()
    )
    await deliver(client, account, [event("evt_1", "invoice.finalized", "in_1", T0, **invoice("open"))])
    await deliver(client, account, [event("evt_2", kind, "in_1", T0 + timedelta(1), **invoice(status))])
    await drain(worker)

    assert await rows(worker, tenant, "SELECT status FROM invoices") == [{"status": status}]
    emitted = await rows(worker, tenant, "SELECT type FROM events WHERE object_type = 'invoice' ORDER BY id")
    assert [row["type"] for row in emitted] == ["invoice.created", "invoice.finalized", kind]


async def test_refunds_made_at_the_provider_are_recorded_up_to_the_amount_paid(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    tenant, account, _ = await tenant_with_subscription(client, admin_headers, accounts, worker, 603)
    await paid_at_provider(worker, tenant, account.id)

    def refund(refund_id: str, amount: int) -> dict[str, Any]:
        body = {"provider_refund_id": refund_id, "status": "succeeded", "provider_payment_id": "pi_7"}
        return {"refund": body | {"amount": amount, "currency": "USD"}}

    await deliver(client, account, [event("evt_1", "refund.updated", "re_1", T0, **refund("re_1", 600))])
    await deliver(client, account, [event("evt_2", "refund.updated", "re_2", T0, **refund("re_2", 500))])
    await drain(worker)

    # The two events are applied by concurrent jobs: either may come first, and the other is refused.
    [recorded] = await rows(worker, tenant, "SELECT provider_refund_id, amount FROM refunds")
    assert recorded in ({"provider_refund_id": "re_1", "amount": 600}, {"provider_refund_id": "re_2", "amount": 500})
    assert await rows(worker, tenant, "SELECT refunded_amount FROM payments") == [
        {"refunded_amount": recorded["amount"]}
    ]
    refused = "evt_2" if recorded["provider_refund_id"] == "re_1" else "evt_1"
    outcomes = {row["event_id"]: row["detail"] for row in await stored(worker, tenant)}
    assert outcomes[refused] == "the refund would exceed what was paid; check the payment at the provider"


async def test_a_refund_whose_answer_was_lost_is_settled_by_its_event_not_recorded_twice(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    """billplane's refund of 300 reached the provider but its answer was lost (no provider id yet);
    the provider's event names it (billplane_refund_id) and settles it. Before, the event made a
    second refund of 300 and the payment counted 600 refunded."""
    tenant, account, _ = await tenant_with_subscription(client, admin_headers, accounts, worker, 605)
    async with worker.database.tenant_session(tenant.schema) as session:
        customer = await session.scalar(text("SELECT id FROM customers"))
        payment = await insert(
            session, "payments", customer_id=customer, amount=1000, currency="USD", status="succeeded",
            provider="fake", provider_account_id=account.id, provider_payment_id="pi_8", refunded_amount=300,
        )  # fmt: skip
        ours = await insert(session, "refunds", payment_id=payment, amount=300, currency="USD", status="pending")

    body = {"provider_refund_id": "re_8", "status": "succeeded", "provider_payment_id": "pi_8", "amount": 300}
    reported = {"refund": body | {"currency": "USD", "billplane_refund_id": ours}}
    await deliver(client, account, [event("evt_1", "refund.updated", "re_8", T0, **reported)])
    await drain(worker)

    assert await rows(worker, tenant, "SELECT id, provider_refund_id, status FROM refunds") == [
        {"id": ours, "provider_refund_id": "re_8", "status": "succeeded"}
    ]
    assert await rows(worker, tenant, "SELECT refunded_amount FROM payments") == [{"refunded_amount": 300}]


async def _refund_never_confirmed(runtime: Runtime, tenant: CreatedTenant, account: int, **state: Any) -> int:
    """billplane's refund of 300 of pi_8 (made at the first call), never confirmed (no provider id), in ``state``."""
    async with runtime.database.tenant_session(tenant.schema) as session:
        customer = await session.scalar(text("SELECT id FROM customers"))
        payment = await session.scalar(text("SELECT id FROM payments WHERE provider_payment_id = 'pi_8'"))
        if payment is None:
            payment = await insert(
                session, "payments", customer_id=customer, amount=1000, currency="USD", status="succeeded",
                provider="fake", provider_account_id=account, provider_payment_id="pi_8",
            )  # fmt: skip
        if state.get("status", "pending") == "pending":
            await session.execute(text("UPDATE payments SET refunded_amount = refunded_amount + 300"))
        fields = {"status": "pending", "action_required": "billplane could not confirm this refund"} | state
        return await insert(session, "refunds", payment_id=payment, amount=300, currency="USD", **fields)


def _reported(refund_id: int, status: str) -> dict[str, Any]:
    body = {"provider_refund_id": "re_8", "status": status, "provider_payment_id": "pi_8", "amount": 300}
    return {"refund": body | {"currency": "USD", "billplane_refund_id": refund_id}}


async def test_a_refund_never_confirmed_that_the_provider_reports_pending_is_asked_about_again(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    tenant, account, _ = await tenant_with_subscription(client, admin_headers, accounts, worker, 609)
    ours = await _refund_never_confirmed(worker, tenant, account.id)

    await deliver(client, account, [event("evt_1", "refund.updated", "re_8", T0, **_reported(ours, "pending"))])
    await drain(worker)

    # Confirmed at last: "could not be confirmed" no longer holds, and the job asks about it as held.
    assert await rows(worker, tenant, "SELECT provider_refund_id, status, action_required FROM refunds") == [
        {"provider_refund_id": "re_8", "status": "pending", "action_required": None}
    ]


@pytest.mark.parametrize("code", ["resolved_by_tenant", "provider_unreachable"])
async def test_a_refund_never_confirmed_and_failed_without_the_providers_word_counts_again_when_it_was_made(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime, code: str
) -> None:
    """Failed by the tenant's /resolve, or because the provider, asked, had no such refund: either
    way billplane's word, which the provider's later "succeeded" overrules."""
    tenant, account, _ = await tenant_with_subscription(client, admin_headers, accounts, worker, 610)
    ours = await _refund_never_confirmed(
        worker, tenant, account.id, status="failed", failure_code=code, action_required=None
    )
    await deliver(client, account, [event("evt_1", "refund.updated", "re_8", T0, **_reported(ours, "succeeded"))])
    await drain(worker)

    # billplane's "failed" was its own word: the money went back after all, and is counted again, once.
    assert await rows(worker, tenant, "SELECT id, provider_refund_id, status, failure_code FROM refunds") == [
        {"id": ours, "provider_refund_id": "re_8", "status": "succeeded", "failure_code": None}
    ]
    assert await rows(worker, tenant, "SELECT refunded_amount FROM payments") == [{"refunded_amount": 300}]


async def test_a_subscription_waiting_for_approval_shows_its_next_action_until_it_starts(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    tenant, account, subscription = await tenant_with_subscription(
        client, admin_headers, accounts, worker, 604, status="incomplete"
    )
    waiting = {
        "subscription": {
            "provider_id": "sub_1",
            "status": "incomplete",
            "next_action": {"type": "redirect", "url": "https://approve.example/sub_1"},
        }
    }
    started = {"subscription": {"provider_id": "sub_1", "status": "active", "quantity": 3}}
    await deliver(client, account, [event("evt_1", "subscription.updated", "sub_1", T0, **waiting)])
    await drain(worker)
    shown = (await client.get(f"/v1/subscriptions/{subscription}", headers=tenant.headers)).json()
    assert (shown["status"], shown["next_action"]) == (
        "incomplete",
        {"type": "redirect", "url": "https://approve.example/sub_1"},
    )

    await deliver(client, account, [event("evt_2", "subscription.updated", "sub_1", T0 + timedelta(1), **started)])
    await drain(worker)
    shown = (await client.get(f"/v1/subscriptions/{subscription}", headers=tenant.headers)).json()
    # The fake does not bill its subscriptions: billplane does, by its own quantity (provider_state).
    assert (shown["status"], shown["quantity"], shown["next_action"]) == ("active", 1, None)


async def test_an_unreachable_verifier_is_503_so_the_provider_delivers_again(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    tenant, account, _ = await tenant_with_subscription(client, admin_headers, accounts, worker, 605)
    response = await client.post(f"/v1/webhooks/fake/{account.id}", content=b"[]", headers={UNREACHABLE_HEADER: "1"})
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    assert await stored(worker, tenant) == []


async def _charge_without_answer(runtime: Runtime, tenant: CreatedTenant, account_id: int) -> tuple[int, int]:
    """An open invoice and its pending payment, charged at ``account_id`` with no answer recorded."""
    async with runtime.database.tenant_session(tenant.schema) as session:
        customer = await session.scalar(text("SELECT id FROM customers"))
        assert isinstance(customer, int)
        invoice_id = await insert(
            session, "invoices", customer_id=customer, status="open", currency="USD", subtotal=1500, total=1500,
            number="INV-1",
        )  # fmt: skip
        payment_id = await insert(
            session, "payments", customer_id=customer, invoice_id=invoice_id, amount=1500, currency="USD",
            status="pending", provider="fake", provider_account_id=account_id,
        )  # fmt: skip
    return invoice_id, payment_id


def _succeeded(payment_id: int, *, amount: int = 1500, **more: Any) -> dict[str, Any]:
    charge = {"provider_payment_id": "pi_9", "status": "succeeded", "amount": amount, "currency": "USD"}
    return {"payment": charge | {"billplane_payment_id": payment_id} | more}


async def test_a_webhook_naming_billplanes_payment_settles_the_charge_whose_answer_was_lost(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    tenant, account, _ = await tenant_with_subscription(client, admin_headers, accounts, worker, 604)
    invoice_id, payment_id = await _charge_without_answer(worker, tenant, account.id)

    await deliver(client, account, [event("evt_1", "payment.succeeded", "pi_9", T0, **_succeeded(payment_id))])
    await drain(worker)

    # The same payment, now with the provider's id: no second payment for the same money.
    assert await rows(worker, tenant, "SELECT id, status, provider_payment_id FROM payments") == [
        {"id": payment_id, "status": "succeeded", "provider_payment_id": "pi_9"}
    ]
    [paid] = await rows(worker, tenant, f"SELECT status, amount_paid FROM invoices WHERE id = {invoice_id}")
    assert paid == {"status": "paid", "amount_paid": 1500}
    kinds = [row["type"] for row in await rows(worker, tenant, "SELECT type FROM events ORDER BY id")]
    assert kinds == ["payment.succeeded", "invoice.paid"]


async def test_a_webhook_whose_charge_differs_from_what_billplane_sent_settles_nothing(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    tenant, account, _ = await tenant_with_subscription(client, admin_headers, accounts, worker, 605)
    _, payment_id = await _charge_without_answer(worker, tenant, account.id)
    unlike = [
        _succeeded(payment_id, amount=1400),  # another amount
        _succeeded(payment_id, currency="EUR"),  # another currency
        _succeeded(payment_id, provider_customer_id="cus_someone_else"),  # not the customer it was sent for
        _succeeded(payment_id + 1000),  # another payment's id (another tenant's, on a shared account)
    ]
    for number, payload in enumerate(unlike):
        await deliver(client, account, [event(f"evt_{number}", "payment.succeeded", "pi_9", T0, **payload)])
    await drain(worker)

    assert await rows(worker, tenant, "SELECT id, status, provider_payment_id FROM payments") == [
        {"id": payment_id, "status": "pending", "provider_payment_id": None}
    ]
    assert {row["status"] for row in await stored(worker, tenant)} == {"ignored"}


async def _settled_failed(
    runtime: Runtime, tenant: CreatedTenant, account: int, *, paid_again: bool
) -> tuple[int, int]:
    """A charge never confirmed that billplane settled failed (no such charge was found), and its
    invoice: still open, or paid meanwhile by dunning's next charge."""
    invoice_id, payment_id = await _charge_without_answer(runtime, tenant, account)
    async with runtime.database.tenant_session(tenant.schema) as session:
        failed = "status = 'failed', failure_code = 'provider_unreachable'"
        await session.execute(text(f"UPDATE payments SET {failed} WHERE id = {payment_id}"))
        await session.execute(text(f"UPDATE invoices SET attempt_count = 1 WHERE id = {invoice_id}"))
        if paid_again:
            await insert(
                session, "payments", customer_id=await session.scalar(text("SELECT id FROM customers")),
                invoice_id=invoice_id, amount=1500, currency="USD", status="succeeded", provider="fake",
                provider_account_id=account, provider_payment_id="pi_2",
            )  # fmt: skip
            paid = "status = 'paid', amount_paid = 1500, paid_at = now()"
            await session.execute(text(f"UPDATE invoices SET {paid} WHERE id = {invoice_id}"))
    return invoice_id, payment_id


async def test_a_charge_settled_failed_that_clears_after_all_pays_its_still_open_invoice(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    tenant, account, _ = await tenant_with_subscription(client, admin_headers, accounts, worker, 606)
    invoice_id, payment_id = await _settled_failed(worker, tenant, account.id, paid_again=False)

    await deliver(client, account, [event("evt_1", "payment.succeeded", "pi_9", T0, **_succeeded(payment_id))])
    await drain(worker)

    assert await rows(worker, tenant, "SELECT id, status, provider_payment_id, failure_code FROM payments") == [
        {"id": payment_id, "status": "succeeded", "provider_payment_id": "pi_9", "failure_code": None}
    ]
    [paid] = await rows(worker, tenant, f"SELECT status, amount_paid FROM invoices WHERE id = {invoice_id}")
    assert paid == {"status": "paid", "amount_paid": 1500}


async def test_a_charge_settled_failed_that_clears_after_its_invoice_was_paid_again_is_flagged(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    tenant, account, _ = await tenant_with_subscription(client, admin_headers, accounts, worker, 607)
    invoice_id, payment_id = await _settled_failed(worker, tenant, account.id, paid_again=True)

    await deliver(client, account, [event("evt_1", "payment.succeeded", "pi_9", T0, **_succeeded(payment_id))])
    await drain(worker)

    # Recorded on its own invoice, not as a second payment on none: the money that moved twice shows.
    shown = await rows(worker, tenant, "SELECT id, invoice_id, status, action_required FROM payments ORDER BY id")
    assert [(row["id"], row["invoice_id"], row["status"]) for row in shown] == [
        (payment_id, invoice_id, "succeeded"),
        (payment_id + 1, invoice_id, "succeeded"),
    ]
    assert "paid 1500 more than owed" in shown[0]["action_required"]
    [paid] = await rows(worker, tenant, f"SELECT status, amount_paid FROM invoices WHERE id = {invoice_id}")
    assert paid == {"status": "paid", "amount_paid": 1500}
    kinds = [row["type"] for row in await rows(worker, tenant, "SELECT type FROM events ORDER BY id")]
    assert kinds == ["payment.succeeded", "payment.action_required"]  # the paid invoice stays as it was


async def test_a_failed_report_of_a_charge_settled_failed_counts_no_second_attempt(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    tenant, account, _ = await tenant_with_subscription(client, admin_headers, accounts, worker, 608)
    invoice_id, payment_id = await _settled_failed(worker, tenant, account.id, paid_again=False)
    failed = {"payment": _succeeded(payment_id)["payment"] | {"status": "failed"}}

    await deliver(client, account, [event("evt_1", "payment.failed", "pi_9", T0, **failed)])
    await drain(worker)

    assert await rows(worker, tenant, "SELECT status, provider_payment_id FROM payments") == [
        {"status": "failed", "provider_payment_id": None}
    ]
    assert await rows(worker, tenant, f"SELECT attempt_count FROM invoices WHERE id = {invoice_id}") == [
        {"attempt_count": 1}
    ]
    assert {row["status"] for row in await stored(worker, tenant)} == {"ignored"}


async def test_a_charge_settled_failed_that_clears_after_its_invoice_was_voided_leaves_the_invoice_void(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    tenant, account, _ = await tenant_with_subscription(client, admin_headers, accounts, worker, 611)
    invoice_id, payment_id = await _settled_failed(worker, tenant, account.id, paid_again=False)
    async with worker.database.tenant_session(tenant.schema) as session:
        await session.execute(text(f"UPDATE invoices SET status = 'void', voided_at = now() WHERE id = {invoice_id}"))

    await deliver(client, account, [event("evt_1", "payment.succeeded", "pi_9", T0, **_succeeded(payment_id))])
    await drain(worker)

    [voided] = await rows(worker, tenant, f"SELECT status, amount_paid FROM invoices WHERE id = {invoice_id}")
    assert voided == {"status": "void", "amount_paid": 0}  # a void invoice takes no payment
    [payment] = await rows(worker, tenant, "SELECT status, action_required FROM payments")
    assert payment["status"] == "succeeded"
    assert "it owed 0" in payment["action_required"]  # the money that moved, for the tenant to refund


async def test_an_invoice_of_a_provider_that_does_not_bill_subscriptions_is_not_mirrored(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    # billplane invoices the periods of this provider's subscription itself: a copy of the
    # provider's invoice for it would bill the period twice.
    tenant, account, _ = await tenant_with_subscription(client, admin_headers, accounts, worker, 612)
    await deliver(client, account, [event("evt_1", "invoice.finalized", "in_1", T0, **invoice("open"))])
    await drain(worker)

    assert await rows(worker, tenant, "SELECT id FROM invoices") == []
    [stored_event] = await rows(worker, tenant, "SELECT status, detail FROM provider_events")
    assert stored_event == {
        "status": "ignored",
        "detail": "the fake provider does not bill subscriptions: billplane invoices them",
    }
