"""The reconciliation job: payments whose charge gave up are settled from the provider's answer,
failed when the provider never received the charge (and then dunned), or shown to the tenant when
the provider cannot be asked; never twice, and never a second charge."""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import msgspec
import pytest
from billplane_sandbox.payment_methods import ANSWER_LOST, DECLINED, SUCCEEDS, UNREACHABLE

from billplane.billing.dunning_run import DunningRun
from billplane.billing.dunning_tasks import RECONCILE_PAYMENTS
from billplane.payments import reconcile, settlement
from billplane.payments.lookup import PaymentLookup
from billplane.payments.models import Payment
from billplane.payments.reconcile import Unconfirmed
from billplane.payments.repository import PaymentRepository
from billplane.plugins import ChargeRequest, ChargeResult, ProviderError, RetryableProviderError
from billplane.runtime import Runtime
from billplane.sync.worker import worker_services
from tests.platform.dunning.helpers import (
    Client,
    execute,
    one,
    period_ends,
    sandbox_customer,
    set_default_method,
    subscribe,
    types,
)
from tests.platform.dunning.stuck import INVOICE, PAYMENT, Stuck, age, reconciliation, sandbox_host, stuck_renewal
from tests.platform.invoices.helpers import event_types, rows
from tests.platform.sync_fakes import FAST, drain


async def _payment(worker: Runtime, stuck: Stuck) -> dict[str, Any]:
    return await one(worker, stuck.setup.tenant, f"{PAYMENT} WHERE id = :id", id=stuck.payment)


async def test_a_charge_that_never_reached_the_provider_fails_once_old_enough_and_is_dunned(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    stuck = await stuck_renewal(client, admin_headers, worker, UNREACHABLE)
    await age(worker, stuck, minutes=9)
    assert (await reconciliation(worker).run()).settled == 0  # too recent: a request may still land
    assert (await _payment(worker, stuck))["status"] == "pending"

    await age(worker, stuck, minutes=11)
    report = await reconciliation(worker).run()

    assert report.settled == 1
    payment = await _payment(worker, stuck)
    assert (payment["status"], payment["failure_code"], payment["failure_message"]) == (
        "failed",
        "provider_unreachable",
        "the provider was not reached; no charge was made",
    )
    assert payment["provider_payment_id"] is None
    invoice = await one(worker, stuck.setup.tenant, INVOICE)
    assert (invoice["status"], invoice["attempt_count"]) == ("open", 1)
    assert invoice["next_payment_attempt_at"] is not None  # dunning took over
    assert await event_types(worker, stuck.setup.tenant, "payment", stuck.payment) == [
        "payment.created",
        "payment.failed",
    ]
    assert (await types(worker, stuck.setup.tenant, "subscription"))[-1] == "subscription.past_due"

    # Dunning's retry is a new payment with a new outbox row (a new key): it charges and pays.
    await set_default_method(worker, stuck.setup, SUCCEEDS)
    await execute(
        worker, stuck.setup.tenant, "UPDATE invoices SET next_payment_attempt_at = now() - interval '1 minute'"
    )
    await DunningRun(worker.database, worker.jobs, worker.accounts).run()
    await drain(worker)
    retried = await rows(worker, stuck.setup.tenant, f"{PAYMENT} ORDER BY id")
    assert [row["status"] for row in retried] == ["failed", "succeeded"]
    assert (await one(worker, stuck.setup.tenant, INVOICE))["status"] == "paid"
    keys = await rows(worker, stuck.setup.tenant, "SELECT DISTINCT id FROM outbox WHERE kind = 'payment.charge'")
    assert len(keys) == 2


async def test_a_charge_whose_answer_was_lost_is_found_and_pays_the_invoice(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    stuck = await stuck_renewal(client, admin_headers, worker, ANSWER_LOST)
    await age(worker, stuck)

    assert (await reconciliation(worker).run()).settled == 1

    payment = await _payment(worker, stuck)
    assert payment["status"] == "succeeded"
    assert payment["provider_payment_id"].startswith("sbx_pay_")
    invoice = await one(worker, stuck.setup.tenant, INVOICE)
    assert (invoice["status"], invoice["amount_paid"]) == ("paid", invoice["total"])
    assert await event_types(worker, stuck.setup.tenant, "payment", stuck.payment) == [
        "payment.created",
        "payment.succeeded",
    ]
    assert (await reconciliation(worker).run()).settled == 0  # settled: not looked at again


async def test_a_found_decline_fails_the_payment_with_the_providers_reason(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    def lose_answer(_request: ChargeRequest, _result: ChargeResult) -> None:
        raise ConnectionResetError("the answer was lost")  # the sandbox declined; billplane never heard

    worker.plugins = sandbox_host(charge=lose_answer)
    stuck = await stuck_renewal(client, admin_headers, worker, DECLINED)
    await age(worker, stuck)

    assert (await reconciliation(worker).run()).settled == 1

    payment = await _payment(worker, stuck)
    assert (payment["status"], payment["failure_code"]) == ("failed", "card_declined")
    assert payment["provider_payment_id"].startswith("sbx_pay_")
    invoice = await one(worker, stuck.setup.tenant, INVOICE)
    assert (invoice["attempt_count"], invoice["next_payment_attempt_at"] is not None) == (1, True)


async def test_without_the_capability_the_payment_stays_pending_and_is_shown_once(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    worker.plugins = sandbox_host(lookup=False)
    stuck = await stuck_renewal(client, admin_headers, worker, UNREACHABLE)
    await age(worker, stuck)

    first, second = await reconciliation(worker).run(), await reconciliation(worker).run()

    assert (first.action_required, first.settled, second.action_required) == (1, 0, 0)
    payment = await _payment(worker, stuck)
    assert (payment["status"], payment["provider_payment_id"], payment["failure_code"]) == ("pending", None, None)
    assert "will not charge it again" in payment["action_required"]
    assert await event_types(worker, stuck.setup.tenant, "payment", stuck.payment) == [
        "payment.created",
        "payment.action_required",
    ]
    shown = (await client.get(f"/v1/payments/{stuck.payment}", headers=stuck.setup.tenant.headers)).json()
    assert (shown["status"], shown["action_required"]) == ("pending", payment["action_required"])
    # No new charge: one charge row, still the failed one, and the invoice waits.
    charges = await rows(worker, stuck.setup.tenant, "SELECT status FROM outbox WHERE kind = 'payment.charge'")
    assert charges == [{"status": "failed"}]
    assert (await one(worker, stuck.setup.tenant, INVOICE))["attempt_count"] == 0


async def test_a_charge_row_still_being_retried_is_never_reconciled_however_old(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    stuck = await stuck_renewal(client, admin_headers, worker, ANSWER_LOST)
    await age(worker, stuck, minutes=60)
    await execute(worker, stuck.setup.tenant, "UPDATE outbox SET status = 'pending' WHERE kind = 'payment.charge'")

    report = await reconciliation(worker).run()

    assert (report.settled, report.action_required) == (0, 0)
    assert (await _payment(worker, stuck))["status"] == "pending"


async def test_an_unreachable_lookup_settles_nothing_and_is_asked_again(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    stuck = await stuck_renewal(client, admin_headers, worker, ANSWER_LOST)
    await age(worker, stuck)

    @dataclass(slots=True)
    class Down(PaymentLookup):
        async def find(self, stuck: Unconfirmed, tenant_id: int) -> ChargeResult | None:
            del stuck, tenant_id
            raise RetryableProviderError("the provider is down")

    report = await reconciliation(worker, Down(worker.accounts, worker.plugins)).run()
    assert (report.unanswered, report.settled) == (1, 0)
    assert (await _payment(worker, stuck))["status"] == "pending"
    assert await event_types(worker, stuck.setup.tenant, "payment", stuck.payment) == ["payment.created"]
    asked = await one(worker, stuck.setup.tenant, "SELECT provider_checked_at FROM payments WHERE id = :id",
                      id=stuck.payment)  # fmt: skip
    assert asked["provider_checked_at"] is not None  # behind the tenant's other waiting payments next run
    assert (await reconciliation(worker).run()).settled == 1


async def test_a_crash_while_recording_leaves_the_payment_for_the_next_run(
    client: Client, admin_headers: dict[str, str], worker: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    stuck = await stuck_renewal(client, admin_headers, worker, ANSWER_LOST)
    await age(worker, stuck)
    settled = settlement.payment_settled

    async def crash(*args: Any, **kwargs: Any) -> None:
        await settled(*args, **kwargs)
        raise RuntimeError("the worker died before its transaction committed")

    monkeypatch.setattr(settlement, "payment_settled", crash)
    crashed = await reconciliation(worker).run()
    assert crashed.failed_tenants == [stuck.setup.tenant.schema]
    payment = await _payment(worker, stuck)
    assert (payment["status"], payment["provider_payment_id"]) == ("pending", None)  # rolled back whole
    assert await event_types(worker, stuck.setup.tenant, "payment", stuck.payment) == ["payment.created"]

    monkeypatch.setattr(settlement, "payment_settled", settled)
    assert (await reconciliation(worker).run()).settled == 1
    assert await event_types(worker, stuck.setup.tenant, "payment", stuck.payment) == [
        "payment.created",
        "payment.succeeded",
    ]


async def test_two_reconcilers_at_once_settle_the_payment_once(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    stuck = await stuck_renewal(client, admin_headers, worker, ANSWER_LOST)
    await age(worker, stuck)

    @dataclass(slots=True)
    class Together(PaymentLookup):
        """Both reconcilers have their answer before either records it."""

        arrived: list[int] = field(default_factory=list)
        both: asyncio.Event = field(default_factory=asyncio.Event)

        async def find(self, stuck: Unconfirmed, tenant_id: int) -> ChargeResult | None:
            self.arrived.append(stuck.payment_id)
            if len(self.arrived) == 2:
                self.both.set()
            await asyncio.wait_for(self.both.wait(), timeout=10)
            return await PaymentLookup.find(self, stuck, tenant_id)

    lookup = Together(worker.accounts, worker.plugins)
    first, second = await asyncio.gather(reconciliation(worker, lookup).run(), reconciliation(worker, lookup).run())

    assert lookup.arrived == [stuck.payment, stuck.payment]
    assert first.settled + second.settled == 1
    assert await event_types(worker, stuck.setup.tenant, "payment", stuck.payment) == [
        "payment.created",
        "payment.succeeded",
    ]
    invoice = await one(worker, stuck.setup.tenant, INVOICE)
    assert (invoice["status"], invoice["amount_paid"]) == ("paid", invoice["total"])  # counted once
    invoice_events = await event_types(worker, stuck.setup.tenant, "invoice", stuck.invoice)
    assert invoice_events.count("invoice.paid") == 1


async def test_a_late_answer_that_settles_the_payment_first_wins(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    """The worker's late answer (or the provider's webhook) settles the payment while the provider
    is being asked: reconciliation re-reads it under its lock and records nothing."""
    stuck = await stuck_renewal(client, admin_headers, worker, ANSWER_LOST)
    await age(worker, stuck)

    @dataclass(slots=True)
    class Late(PaymentLookup):
        async def find(self, stuck: Unconfirmed, tenant_id: int) -> ChargeResult | None:
            found = await PaymentLookup.find(self, stuck, tenant_id)
            assert found is not None
            async with worker.database.tenant_session(f"tenant_{stuck_slug}") as session:
                # What charge_payment's finish does with an answer that arrives now.
                locked = await PaymentRepository(session=session).lock(stuck.payment_id)
                assert locked is not None
                locked.provider_payment_id = found.provider_payment_id
                await settlement.payment_settled(session, locked, found.status)
            return None  # and the provider, asked, would even say "no such charge"

    stuck_slug = stuck.setup.tenant.slug
    report = await reconciliation(worker, Late(worker.accounts, worker.plugins)).run()

    assert report.settled == 0
    payment = await _payment(worker, stuck)
    assert (payment["status"], payment["failure_code"]) == ("succeeded", None)
    assert await event_types(worker, stuck.setup.tenant, "payment", stuck.payment) == [
        "payment.created",
        "payment.succeeded",
    ]


async def test_only_failed_charges_old_enough_are_found_across_tenants(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    old = await stuck_renewal(client, admin_headers, worker, ANSWER_LOST)
    recent = await stuck_renewal(client, admin_headers, worker, ANSWER_LOST)
    await age(worker, old)

    report = await reconciliation(worker).run()

    assert report.settled == 1
    assert (await _payment(worker, old))["status"] == "succeeded"
    assert (await _payment(worker, recent))["status"] == "pending"
    job = replace(reconciliation(worker), settle_after=timedelta(seconds=0))
    assert (await job.run()).settled == 1
    assert (await _payment(worker, recent))["status"] == "succeeded"


async def _recorded_by_webhook(worker: Runtime, stuck: Stuck, *, extra_cents: int = 0) -> int:
    """The provider's webhook for the lost charge arrived first and, naming neither billplane's
    payment nor an invoice, was recorded as a succeeded payment of the customer: its id."""
    async with worker.database.tenant_session(stuck.setup.tenant.schema) as session:
        payment = await session.get(Payment, stuck.payment)
        assert payment is not None
        unconfirmed = await reconcile.unconfirmed(
            session,
            stuck.setup.tenant.id,
            payment,
            settle_after=timedelta(0),
            now=payment.created_at + timedelta(days=1),
        )
    assert isinstance(unconfirmed, Unconfirmed)
    found = await PaymentLookup(worker.accounts, worker.plugins).find(unconfirmed, stuck.setup.tenant.id)
    assert found is not None
    recorded = await one(
        worker, stuck.setup.tenant,
        "INSERT INTO payments (customer_id, amount, currency, status, provider, provider_account_id, "
        "provider_payment_id) SELECT customer_id, amount + :extra, currency, 'succeeded', provider, "
        "provider_account_id, :pid FROM payments WHERE id = :id RETURNING id",
        pid=found.provider_payment_id, id=stuck.payment, extra=extra_cents,
    )  # fmt: skip
    return int(recorded["id"])


async def test_a_charge_already_recorded_from_its_webhook_pays_the_invoice_once(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    """The payment the webhook recorded takes the invoice; billplane's own is canceled, not counted."""
    stuck = await stuck_renewal(client, admin_headers, worker, ANSWER_LOST)
    await age(worker, stuck)
    recorded = await _recorded_by_webhook(worker, stuck)

    report = await reconciliation(worker).run()

    assert (report.settled, report.action_required, report.failed_tenants) == (1, 0, [])
    shown = await _payment(worker, stuck)
    assert (shown["status"], shown["provider_payment_id"], shown["action_required"]) == ("canceled", None, None)
    assert shown["failure_code"] == "duplicate"
    assert f"payment {recorded}" in shown["failure_message"]
    paying = await rows(worker, stuck.setup.tenant, "SELECT id, status, amount FROM payments WHERE invoice_id = :i "
                        "AND status = 'succeeded'", i=stuck.invoice)  # fmt: skip
    invoice = await one(worker, stuck.setup.tenant, INVOICE)
    assert [row["id"] for row in paying] == [recorded]
    assert (invoice["status"], invoice["amount_paid"]) == ("paid", invoice["total"])
    assert sum(row["amount"] for row in paying) == invoice["total"]  # the money, counted once
    assert await event_types(worker, stuck.setup.tenant, "payment", stuck.payment) == [
        "payment.created",
        "payment.canceled",
    ]
    assert await event_types(worker, stuck.setup.tenant, "payment", recorded) == ["payment.updated"]
    assert "invoice.paid" in await event_types(worker, stuck.setup.tenant, "invoice", stuck.invoice)
    assert (await reconciliation(worker).run()).settled == 0  # canceled: not looked at again


async def test_a_charge_recorded_from_its_webhook_with_other_terms_is_shown_not_recorded_twice(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    """The recorded payment differs from what the charge was sent (here its amount): it is not
    taken as the charge's, nothing is counted twice, the tenant is told."""
    stuck = await stuck_renewal(client, admin_headers, worker, ANSWER_LOST)
    await age(worker, stuck)
    recorded = await _recorded_by_webhook(worker, stuck, extra_cents=1)

    report = await reconciliation(worker).run()

    assert (report.settled, report.action_required, report.failed_tenants) == (0, 1, [])
    shown = await _payment(worker, stuck)
    assert (shown["status"], shown["provider_payment_id"]) == ("pending", None)
    assert f"payment {recorded}" in shown["action_required"]
    assert await event_types(worker, stuck.setup.tenant, "payment", stuck.payment) == [
        "payment.created",
        "payment.action_required",
    ]
    assert await event_types(worker, stuck.setup.tenant, "payment", recorded) == []
    assert (await one(worker, stuck.setup.tenant, INVOICE))["status"] == "open"


async def test_the_worker_runs_the_job_every_five_minutes_with_the_configured_threshold(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    periodic = worker.jobs.app.periodic_registry.periodic_tasks
    assert periodic[(RECONCILE_PAYMENTS, "payment-reconciliation")].cron == "*/5 * * * *"
    job = worker_services(worker).reconciliation
    assert job.settle_after == timedelta(minutes=worker.settings.providers.payment_reconcile_after_minutes)
    providers = msgspec.structs.replace(worker.settings.providers, payment_pending_check_minutes=15.0)
    tuned = dataclasses.replace(worker, settings=msgspec.structs.replace(worker.settings, providers=providers))
    assert worker_services(tuned).reconciliation.pending.every == timedelta(minutes=15)

    stuck = await stuck_renewal(client, admin_headers, worker, ANSWER_LOST)
    await age(worker, stuck)
    assert (await job.run()).settled == 1
    assert (await _payment(worker, stuck))["status"] == "succeeded"


async def test_a_refusal_after_a_lost_answer_leaves_the_payment_for_reconciliation(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    calls: list[str] = []

    def answer_lost_then_refused(_request: ChargeRequest, _result: ChargeResult) -> None:
        calls.append("charge")
        if len(calls) == 1:
            raise RetryableProviderError("read timeout")  # charged, but the answer never came back
        raise ProviderError("invalid API key")  # the tenant rolled the key meanwhile

    setup = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, prefix="reclost")
    worker.plugins = sandbox_host(charge=answer_lost_then_refused, tenant_id=setup.tenant.id)
    worker.sync_options = FAST  # retried at once
    subscription = await subscribe(client, setup)
    await period_ends(worker, setup, subscription)
    await drain(worker)

    assert calls == ["charge", "charge"]
    payment = await one(worker, setup.tenant, PAYMENT)
    # Not failed: dunning would charge again with a new key, and the first charge went through.
    assert (payment["status"], payment["provider_payment_id"]) == ("pending", None)
    charge = await one(worker, setup.tenant, "SELECT status FROM outbox WHERE kind = 'payment.charge'")
    assert charge["status"] == "failed"
    stuck = Stuck(setup, subscription, (await one(worker, setup.tenant, INVOICE))["id"], payment["id"])
    await age(worker, stuck)

    assert (await reconciliation(worker).run()).settled == 1  # found by its key: the first charge

    assert (await one(worker, setup.tenant, PAYMENT))["status"] == "succeeded"
    assert (await one(worker, setup.tenant, INVOICE))["status"] == "paid"


def _refused(_request: ChargeRequest, _result: ChargeResult) -> None:
    raise ProviderError("invalid API key")


async def _renewal_refused(
    client: Client, admin_headers: dict[str, str], worker: Runtime, prefix: str, *, called_before: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A renewal whose charge the provider refuses outright, after ``called_before`` calls that left
    no answer (a worker that claimed the row, started the call and died counts nothing else): the
    payment and its charge row once the worker is done."""
    setup = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, prefix=prefix)
    worker.plugins = sandbox_host(charge=_refused, tenant_id=setup.tenant.id)
    subscription = await subscribe(client, setup)
    await period_ends(worker, setup, subscription)
    await execute(worker, setup.tenant, "UPDATE outbox SET calls = :n WHERE kind = 'payment.charge'", n=called_before)
    await drain(worker)
    charge = await one(worker, setup.tenant, "SELECT status, calls FROM outbox WHERE kind = 'payment.charge'")
    return await one(worker, setup.tenant, PAYMENT), charge


async def test_a_refusal_after_a_worker_died_during_the_call_leaves_the_payment_for_reconciliation(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    payment, charge = await _renewal_refused(client, admin_headers, worker, "recdied", called_before=1)

    assert (payment["status"], payment["provider_payment_id"]) == ("pending", None)
    assert (charge["status"], charge["calls"]) == ("failed", 2)


async def test_a_refusal_of_a_first_call_fails_the_payment_at_once(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    payment, charge = await _renewal_refused(client, admin_headers, worker, "recfirst", called_before=0)

    assert (payment["status"], payment["failure_message"]) == ("failed", "invalid API key")
    assert (charge["status"], charge["calls"]) == ("done", 1)


@pytest.mark.parametrize(("hours", "charged"), [(19, True), (21, False)])
async def test_a_charge_that_may_have_been_made_is_not_sent_again_once_its_key_may_be_forgotten(
    client: Client, admin_headers: dict[str, str], worker: Runtime, *, hours: int, charged: bool
) -> None:
    # A worker died during the call and the row waited (a suspended tenant, a fleet down): Stripe
    # keeps an idempotency key 24 hours, and after that the same key makes a second charge.
    calls: list[str] = []
    setup = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, prefix="reckey")
    worker.plugins = sandbox_host(charge=lambda _request, _result: calls.append("charge"), tenant_id=setup.tenant.id)
    subscription = await subscribe(client, setup)
    await period_ends(worker, setup, subscription)
    await execute(
        worker, setup.tenant,
        "UPDATE outbox SET calls = 1, created_at = now() - make_interval(hours => :hours) "
        "WHERE kind = 'payment.charge'",
        hours=hours,
    )  # fmt: skip
    await drain(worker)

    payment = await one(worker, setup.tenant, PAYMENT)
    charge = await one(worker, setup.tenant, "SELECT status, last_error FROM outbox WHERE kind = 'payment.charge'")
    if charged:  # the provider still knows the key: sent again, it answers with the first charge
        assert (calls, payment["status"], charge["status"]) == (["charge"], "succeeded", "done")
        return
    assert (calls, payment["status"], payment["provider_payment_id"]) == ([], "pending", None)
    assert charge["status"] == "failed"
    assert "not sent again: reconciliation asks the provider" in charge["last_error"]
    stuck = Stuck(setup, subscription, (await one(worker, setup.tenant, INVOICE))["id"], payment["id"])
    await age(worker, stuck)
    # The sandbox never saw the charge: reconciliation fails the payment, and dunning takes over.
    assert (await reconciliation(worker).run()).settled == 1
    assert (await one(worker, setup.tenant, PAYMENT))["status"] == "failed"
