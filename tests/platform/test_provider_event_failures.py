"""Provider events that cannot be applied as they are, and refunds that do not fit their payment.

An event the database refuses on every attempt (a value it cannot hold, a check it fails) is
ignored with the reason instead of staying ``received`` for ever: the sweep takes each tenant's
oldest 100 ``received`` events, so enough of them would starve every newer one. A unique
violation is how two events racing to record the same object resolve: the loser stays
``received`` and is applied again. A unique violation is not retried for ever either: one
a day old is no race. A refund is counted only against a payment that succeeded, in its currency
(one of a payment still pending waits for its outcome, up to a day), and an event about
billplane's own refund must agree with it.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from billplane.runtime import Runtime
from billplane.sync.refs import EventRef
from billplane.sync.sweep import Sweeper
from billplane.webhooks.apply import EventApplier
from tests.conftest import CreatedTenant
from tests.platform.billing_seed import insert
from tests.platform.sync_fakes import AccountRow, StaticAccounts, drain
from tests.platform.test_provider_billing_events import paid_at_provider, rows
from tests.platform.test_webhooks import T0, Client, deliver, event, stored, tenant_with_subscription

TOO_BIG = 2**63  # one more than PostgreSQL's bigint holds


def _renewal(payment_id: str, amount: int) -> dict[str, Any]:
    """A payment billplane did not start (a provider-billed renewal) of the test's subscription."""
    charge = {"provider_payment_id": payment_id, "status": "succeeded", "amount": amount, "currency": "USD"}
    return {"payment": charge | {"provider_subscription_id": "sub_1"}}


def _refund(refund_id: str, amount: int, currency: str, status: str = "succeeded", **more: Any) -> dict[str, Any]:
    body = {"provider_refund_id": refund_id, "status": status, "provider_payment_id": "pi_7", "amount": amount}
    return {"refund": body | {"currency": currency} | more}


async def _outcomes(runtime: Runtime, tenant: CreatedTenant) -> dict[str, tuple[str, str | None]]:
    return {row["event_id"]: (row["status"], row["detail"]) for row in await stored(runtime, tenant)}


async def _event_types(runtime: Runtime, tenant: CreatedTenant) -> list[str]:
    return [row["type"] for row in await rows(runtime, tenant, "SELECT type FROM events ORDER BY id")]


async def _unapplied_refs(runtime: Runtime, tenant: CreatedTenant) -> list[object]:
    due = await Sweeper(runtime.database, runtime.jobs, runtime.sync_options, grace_seconds=0).due()
    return [ref for ref in due if isinstance(ref, EventRef) and ref.schema == tenant.schema]


async def _payment_row(runtime: Runtime, tenant: CreatedTenant, account: int, **columns: Any) -> int:
    """A 1000 USD payment ``pi_7`` at ``account``, with ``columns``."""
    async with runtime.database.tenant_session(tenant.schema) as session:
        customer = await session.scalar(text("SELECT id FROM customers"))
        values = {"amount": 1000, "currency": "USD", "status": "succeeded"} | columns
        return await insert(
            session, "payments", customer_id=customer, provider="fake", provider_account_id=account,
            provider_payment_id="pi_7", **values,
        )  # fmt: skip


# Defect A: events the database refuses whatever the attempt.


async def test_an_event_with_an_amount_the_database_cannot_hold_is_ignored_not_retried_for_ever(
    client: Client,
    admin_headers: dict[str, str],
    accounts: StaticAccounts,
    worker: Runtime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tenant, account, _ = await tenant_with_subscription(client, admin_headers, accounts, worker, 701)
    refused = event("evt_1", "payment.succeeded", "pi_1", T0, **_renewal("pi_1", TOO_BIG))
    fine = event("evt_2", "payment.succeeded", "pi_2", T0, **_renewal("pi_2", 1500))
    await deliver(client, account, [refused, fine])
    with caplog.at_level(logging.WARNING, logger="billplane.webhooks"):
        await drain(worker)

    outcomes = await _outcomes(worker, tenant)
    assert outcomes["evt_1"] == ("ignored", "could not be applied: data_exception (SQLSTATE 22000)")
    assert outcomes["evt_2"] == ("applied", None)
    # Nothing of the refused event's work was kept: no payment, no event of billplane's own.
    assert await rows(worker, tenant, "SELECT provider_payment_id, amount FROM payments") == [
        {"provider_payment_id": "pi_2", "amount": 1500}
    ]
    assert await _event_types(worker, tenant) == ["payment.succeeded"]
    assert await _unapplied_refs(worker, tenant) == []  # nothing left for the sweep to retry
    [warning] = [r for r in caplog.records if r.name == "billplane.webhooks" and r.levelno == logging.WARNING]
    assert "evt_1" in warning.getMessage()
    assert "data_exception" in warning.getMessage()
    assert str(TOO_BIG) not in warning.getMessage()


async def test_an_event_failing_a_check_is_ignored_naming_the_constraint_not_the_values(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    tenant, account, _ = await tenant_with_subscription(client, admin_headers, accounts, worker, 702)
    # A check billplane does not validate before writing. The test adds its own: a model's check
    # an event can reach is a bug to be validated away, and this test must outlive each such fix.
    async with worker.database.tenant_session(tenant.schema) as session:
        await session.execute(
            text("ALTER TABLE payments ADD CONSTRAINT payments_amount_limit CHECK (amount <= 100000)")
        )
    refused = event("evt_1", "payment.succeeded", "pi_1", T0, **_renewal("pi_1", 123457))
    await deliver(client, account, [refused])
    await drain(worker)

    [(status, detail)] = (await _outcomes(worker, tenant)).values()
    assert (status, detail) == (
        "ignored",
        "could not be applied: check_violation (SQLSTATE 23514), constraint payments_amount_limit of table payments",
    )
    assert await rows(worker, tenant, "SELECT id FROM payments") == []
    assert await _event_types(worker, tenant) == []


async def _refund_id_taken_at_another_account(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime, account_id: int
) -> CreatedTenant:
    """A tenant whose account ``account_id`` reports refund re_1 of its payment pi_7, while another
    account of the tenant (``account_id + 1``) holds a refund with that provider id: the refunds'
    unique index is per tenant, so recording it fails."""
    tenant, account, _ = await tenant_with_subscription(client, admin_headers, accounts, worker, account_id)
    other = accounts.add(AccountRow(id=account_id + 1, tenant_id=tenant.id, tenant_schema=tenant.schema))
    await paid_at_provider(worker, tenant, account.id)
    async with worker.database.tenant_session(tenant.schema) as session:
        customer = await session.scalar(text("SELECT id FROM customers"))
        theirs = await insert(
            session, "payments", customer_id=customer, amount=1000, currency="USD", status="succeeded",
            provider="fake", provider_account_id=other.id, provider_payment_id="pi_8", refunded_amount=100,
        )  # fmt: skip
        await insert(
            session, "refunds", payment_id=theirs, amount=100, currency="USD", status="succeeded",
            provider_refund_id="re_1",
        )  # fmt: skip
    await deliver(client, account, [event("evt_1", "refund.updated", "re_1", T0, **_refund("re_1", 300, "USD"))])
    return tenant


async def test_a_unique_violation_leaves_the_event_received_to_be_applied_again(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    """How two events racing to record the same refund resolve: the loser's insert fails on the
    unique index and its event is applied again later. Here the other row is another account's
    refund with the same provider id (the index is per tenant)."""
    tenant = await _refund_id_taken_at_another_account(client, admin_headers, accounts, worker, 703)
    async with worker.database.tenant_session(tenant.schema) as session:
        event_id = await session.scalar(text("SELECT id FROM provider_events WHERE event_id = 'evt_1'"))
    ref = EventRef(tenant.id, tenant.schema, int(event_id))

    with pytest.raises(IntegrityError):
        await EventApplier(worker.database).apply(ref)
    assert (await _outcomes(worker, tenant))["evt_1"] == ("received", None)

    async with worker.database.tenant_session(tenant.schema) as session:
        await session.execute(text("UPDATE refunds SET provider_refund_id = 're_1_elsewhere'"))
    assert await EventApplier(worker.database).apply(ref) == "applied"
    assert await rows(worker, tenant, "SELECT refunded_amount FROM payments WHERE provider_payment_id = 'pi_7'") == [
        {"refunded_amount": 300}
    ]


async def test_a_unique_violation_a_day_old_is_ignored_naming_the_constraint(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    """One provider refund id reported at two accounts of one tenant: no retry resolves it."""
    tenant = await _refund_id_taken_at_another_account(client, admin_headers, accounts, worker, 705)
    await rows(worker, tenant, "UPDATE provider_events SET received_at = now() - interval '25 hours' RETURNING id")
    await drain(worker)

    reason = (
        "could not be applied in a day of attempts: unique_violation (SQLSTATE 23505), constraint "
        "uq_refunds_provider_refund_id of table refunds"
    )
    assert (await _outcomes(worker, tenant))["evt_1"] == ("ignored", reason)
    assert await rows(worker, tenant, "SELECT refunded_amount FROM payments WHERE provider_payment_id = 'pi_7'") == [
        {"refunded_amount": 0}
    ]
    assert await _unapplied_refs(worker, tenant) == []


# Defect B: refunds that do not fit their payment.


async def test_a_refund_in_another_currency_than_its_payment_is_ignored(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    tenant, account, _ = await tenant_with_subscription(client, admin_headers, accounts, worker, 711)
    await paid_at_provider(worker, tenant, account.id)  # 1000 USD
    await deliver(client, account, [event("evt_1", "refund.updated", "re_1", T0, **_refund("re_1", 600, "JPY"))])
    await drain(worker)

    assert await rows(worker, tenant, "SELECT id FROM refunds") == []
    assert await rows(worker, tenant, "SELECT refunded_amount FROM payments") == [{"refunded_amount": 0}]
    assert (await _outcomes(worker, tenant))["evt_1"] == (
        "ignored",
        "the refund is in JPY and its payment in USD: not recorded; check the refund at the provider",
    )


@pytest.mark.parametrize("refund_status", ["succeeded", "pending"])
async def test_money_refunded_of_a_payment_billplane_holds_as_failed_is_shown_to_the_tenant(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime, refund_status: str
) -> None:
    tenant, account, _ = await tenant_with_subscription(client, admin_headers, accounts, worker, 712)
    payment = await _payment_row(worker, tenant, account.id, status="failed", failure_code="card_declined")
    reported = _refund("re_1", 300, "USD", refund_status)
    await deliver(client, account, [event("evt_1", "refund.updated", "re_1", T0, **reported)])
    await drain(worker)

    assert await rows(worker, tenant, "SELECT id FROM refunds") == []
    [shown] = await rows(worker, tenant, "SELECT status, refunded_amount, action_required FROM payments")
    assert (shown["status"], shown["refunded_amount"]) == ("failed", 0)
    assert shown["action_required"] == (
        f"the provider reports refund re_1 of 300 USD of this payment ({refund_status}), while billplane holds "
        "the payment as failed: money may have moved. The refund is not recorded; check the payment and the "
        "refund at fake."
    )
    assert await _event_types(worker, tenant) == ["payment.action_required"]
    assert (await _outcomes(worker, tenant))["evt_1"] == (
        "ignored",
        f"the refunded payment is failed here: not recorded; payment {payment} shows action_required",
    )


async def test_a_failed_refund_of_a_failed_payment_is_ignored_quietly(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    tenant, account, _ = await tenant_with_subscription(client, admin_headers, accounts, worker, 713)
    await _payment_row(worker, tenant, account.id, status="failed")
    await deliver(
        client, account, [event("evt_1", "refund.updated", "re_1", T0, **_refund("re_1", 300, "USD", "failed"))]
    )
    await drain(worker)

    assert await rows(worker, tenant, "SELECT id FROM refunds") == []
    assert await rows(worker, tenant, "SELECT action_required FROM payments") == [{"action_required": None}]
    assert await _event_types(worker, tenant) == []
    assert (await _outcomes(worker, tenant))["evt_1"] == (
        "ignored",
        "a failed refund of a payment that is failed here: no money moved",
    )


async def test_a_refund_of_a_canceled_payment_is_ignored(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    """A canceled payment gave way to another payment that records its charge."""
    tenant, account, _ = await tenant_with_subscription(client, admin_headers, accounts, worker, 714)
    await _payment_row(worker, tenant, account.id, status="canceled")
    await deliver(client, account, [event("evt_1", "refund.updated", "re_1", T0, **_refund("re_1", 300, "USD"))])
    await drain(worker)

    assert await rows(worker, tenant, "SELECT id FROM refunds") == []
    assert await rows(worker, tenant, "SELECT refunded_amount, action_required FROM payments") == [
        {"refunded_amount": 0, "action_required": None}
    ]
    reason = (
        "the refunded payment is canceled here, not succeeded: not recorded; check the payment and the refund at the "
        "provider"
    )
    assert (await _outcomes(worker, tenant))["evt_1"] == ("ignored", reason)


async def test_a_refund_reported_before_its_payments_success_is_counted_once_it_succeeds(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    """Events arrive in any order: the refund waits (received) while its payment is pending here.
    Not flagged meanwhile: ``action_required`` would stop billplane asking the provider about
    the payment, which is what settles it."""
    tenant, account, _ = await tenant_with_subscription(client, admin_headers, accounts, worker, 718)
    await _payment_row(worker, tenant, account.id, status="pending")
    await deliver(client, account, [event("evt_1", "refund.updated", "re_1", T0, **_refund("re_1", 300, "USD"))])
    await drain(worker)
    assert (await _outcomes(worker, tenant))["evt_1"] == ("received", None)
    assert await rows(worker, tenant, "SELECT action_required FROM payments") == [{"action_required": None}]

    await deliver(client, account, [event("evt_2", "payment.succeeded", "pi_7", T0, **_renewal("pi_7", 1000))])
    await drain(worker)
    await drain(worker)  # the refund again, by the sweep, if it came before the payment's success

    assert await _outcomes(worker, tenant) == {"evt_1": ("applied", None), "evt_2": ("applied", None)}
    assert await rows(worker, tenant, "SELECT amount, status, provider_refund_id FROM refunds") == [
        {"amount": 300, "status": "succeeded", "provider_refund_id": "re_1"}
    ]
    assert await rows(worker, tenant, "SELECT status, refunded_amount FROM payments") == [
        {"status": "succeeded", "refunded_amount": 300}
    ]


async def test_a_refund_whose_payment_is_still_pending_after_a_day_is_ignored(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    tenant, account, _ = await tenant_with_subscription(client, admin_headers, accounts, worker, 719)
    await _payment_row(worker, tenant, account.id, status="pending")
    await deliver(client, account, [event("evt_1", "refund.updated", "re_1", T0, **_refund("re_1", 300, "USD"))])
    await rows(worker, tenant, "UPDATE provider_events SET received_at = now() - interval '25 hours' RETURNING id")
    await drain(worker)

    assert await rows(worker, tenant, "SELECT id FROM refunds") == []
    assert await rows(worker, tenant, "SELECT refunded_amount, action_required FROM payments") == [
        {"refunded_amount": 0, "action_required": None}
    ]
    reason = (
        "not applied after a day of waiting: the refunded payment is still pending here: check it and the refund "
        "at the provider"
    )
    assert (await _outcomes(worker, tenant))["evt_1"] == ("ignored", reason)
    assert await _unapplied_refs(worker, tenant) == []


async def _own_refund(runtime: Runtime, tenant: CreatedTenant, account: int, **columns: Any) -> int:
    """billplane's pending refund of 300 USD of ``pi_7`` (1000 USD), its amount reserved."""
    payment = await _payment_row(runtime, tenant, account, refunded_amount=300)
    async with runtime.database.tenant_session(tenant.schema) as session:
        return await insert(
            session, "refunds", payment_id=payment, amount=300, currency="USD", status="pending", **columns
        )


@pytest.mark.parametrize("money", [(300, "JPY"), (500, "USD")], ids=["another currency", "another amount"])
async def test_an_event_about_billplanes_refund_by_its_provider_id_must_agree_with_it(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime, money: tuple[int, str]
) -> None:
    amount, currency = money
    tenant, account, _ = await tenant_with_subscription(client, admin_headers, accounts, worker, 715)
    ours = await _own_refund(worker, tenant, account.id, provider_refund_id="re_8")
    reported = _refund("re_8", amount, currency)
    await deliver(client, account, [event("evt_1", "refund.updated", "re_8", T0, **reported)])
    await drain(worker)

    assert await rows(worker, tenant, "SELECT status FROM refunds") == [{"status": "pending"}]
    assert await rows(worker, tenant, "SELECT refunded_amount FROM payments") == [{"refunded_amount": 300}]
    reason = (
        f"the provider reports this refund as {amount} {currency}, and billplane's refund {ours} with its id is "
        "300 USD: not applied; check the refund at the provider"
    )
    assert (await _outcomes(worker, tenant))["evt_1"] == ("ignored", reason)


async def test_an_event_naming_billplanes_refund_in_another_currency_does_not_settle_it(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    tenant, account, _ = await tenant_with_subscription(client, admin_headers, accounts, worker, 716)
    ours = await _own_refund(worker, tenant, account.id)  # never confirmed: no provider id yet
    reported = _refund("re_8", 300, "JPY", billplane_refund_id=ours)
    await deliver(client, account, [event("evt_1", "refund.updated", "re_8", T0, **reported)])
    await drain(worker)

    assert await rows(worker, tenant, "SELECT status, provider_refund_id FROM refunds") == [
        {"status": "pending", "provider_refund_id": None}
    ]
    assert await rows(worker, tenant, "SELECT refunded_amount FROM payments") == [{"refunded_amount": 300}]
    reason = (
        f"the provider reports this refund as 300 JPY, and billplane's refund {ours} it names is 300 USD: not "
        "applied; check the refund at the provider"
    )
    assert (await _outcomes(worker, tenant))["evt_1"] == ("ignored", reason)


async def test_a_refund_amount_no_payment_can_hold_is_ignored_with_the_reason(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    tenant, account, _ = await tenant_with_subscription(client, admin_headers, accounts, worker, 717)
    ours = await _own_refund(worker, tenant, account.id)
    reported = _refund("re_8", TOO_BIG, "USD", billplane_refund_id=ours)
    await deliver(client, account, [event("evt_1", "refund.updated", "re_8", T0, **reported)])
    await drain(worker)

    assert await rows(worker, tenant, "SELECT status FROM refunds") == [{"status": "pending"}]
    assert (await _outcomes(worker, tenant))["evt_1"] == (
        "ignored",
        "the refund's amount is more than any payment can be: check the refund at the provider",
    )
