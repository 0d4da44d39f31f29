"""Payments a provider holds as pending whose webhook never came: the reconciliation job asks the
provider how each stands (at most hourly), records the outcome as the webhook would have, and
leaves to the tenant what it cannot ask about; never a guess, never a second record."""

from __future__ import annotations

import dataclasses
import logging
from datetime import timedelta
from typing import Any

import msgspec
import pytest
from billplane_sandbox.payment_methods import PENDING_FAILS, PENDING_SUCCEEDS, SUCCEEDS

from billplane.billing.dunning_run import DunningRun
from billplane.payments import pending_charges
from billplane.payments.models import Payment
from billplane.payments.pending_charges import pending_charge
from billplane.plugins import ChargeResult
from billplane.plugins.host import PluginHost
from billplane.runtime import Runtime
from tests.platform.dunning.held import Held, held_host, held_payment, its_webhook_succeeded, made_ago, use
from tests.platform.dunning.helpers import Client, database_now, execute, one, set_default_method, types
from tests.platform.dunning.stuck import INVOICE, PAYMENT, reconciliation
from tests.platform.invoices.helpers import event_types
from tests.platform.sync_fakes import drain

FIVE_DAYS = 5 * 24 * 60 + 1  # minutes: past BILLPLANE_PAYMENT_PENDING_FLAG_HOURS' default
_SHOWN = PAYMENT.replace(" FROM payments", ", provider_checked_at FROM payments")


def _broken(_provider_payment_id: str) -> ChargeResult | None:
    raise KeyError("status")  # a plugin that misreads its provider's answer


async def _payment(worker: Runtime, held: Held) -> dict[str, Any]:
    return await one(worker, held.setup.tenant, f"{_SHOWN} WHERE id = :id", id=held.payment)


@pytest.mark.parametrize(
    ("token", "outcome"),
    [
        (PENDING_SUCCEEDS, ("succeeded", None, "paid", 0, "payment.succeeded")),
        (PENDING_FAILS, ("failed", "debit_failed", "open", 1, "payment.failed")),
    ],
)
async def test_a_charge_whose_webhook_never_came_is_settled_from_the_provider_after_an_hour(
    client: Client, admin_headers: dict[str, str], worker: Runtime, token: str, outcome: tuple[Any, ...]
) -> None:
    held = await held_payment(client, admin_headers, worker, token)
    use(client, worker, held_host(held))  # the charge has settled at the sandbox
    await made_ago(worker, held, minutes=59)
    await reconciliation(worker).run()
    assert held.asked == []  # too recent: its webhook may still come
    assert (await _payment(worker, held))["status"] == "pending"

    await made_ago(worker, held, minutes=61)
    await reconciliation(worker).run()

    assert held.asked == [held.provider_payment_id]
    payment = await _payment(worker, held)
    status, code, invoice_status, attempts, event = outcome
    assert (payment["status"], payment["failure_code"], payment["provider_payment_id"]) == (
        status,
        code,
        held.provider_payment_id,
    )
    invoice = await one(worker, held.setup.tenant, INVOICE)
    assert (invoice["status"], invoice["attempt_count"]) == (invoice_status, attempts)
    assert await event_types(worker, held.setup.tenant, "payment", held.payment) == ["payment.created", event]
    if status == "failed":
        assert invoice["next_payment_attempt_at"] is not None  # dunning took over

    await reconciliation(worker).run()  # settled: never asked again
    assert held.asked == [held.provider_payment_id]


async def test_a_charge_still_pending_is_asked_about_again_only_an_hour_later(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    held = await held_payment(client, admin_headers, worker, PENDING_SUCCEEDS)
    use(client, worker, held_host(held, settles_after=3600))  # still clearing at the sandbox
    await made_ago(worker, held, minutes=61)

    await reconciliation(worker).run()
    await reconciliation(worker).run()

    assert held.asked == [held.provider_payment_id]  # once, not on every run
    payment = await _payment(worker, held)
    assert (payment["status"], payment["action_required"]) == ("pending", None)
    assert payment["provider_checked_at"] >= await database_now(worker) - timedelta(minutes=1)
    assert await event_types(worker, held.setup.tenant, "payment", held.payment) == ["payment.created"]

    await made_ago(worker, held, minutes=200, checked_minutes=61)
    use(client, worker, held_host(held))  # it has cleared now
    await reconciliation(worker).run()
    assert held.asked == [held.provider_payment_id] * 2
    assert (await _payment(worker, held))["status"] == "succeeded"


async def test_an_unreachable_provider_is_asked_again_an_hour_later_not_on_every_run(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    held = await held_payment(client, admin_headers, worker, PENDING_SUCCEEDS)
    use(client, worker, held_host(held, down=True))
    await made_ago(worker, held, minutes=61)

    await reconciliation(worker).run()
    await reconciliation(worker).run()

    assert held.asked == [held.provider_payment_id]
    payment = await _payment(worker, held)
    assert (payment["status"], payment["action_required"]) == ("pending", None)
    assert payment["provider_checked_at"] is not None


async def test_a_charge_the_provider_cannot_read_is_shown_to_the_tenant_after_five_days_not_settled(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    held = await held_payment(client, admin_headers, worker, PENDING_SUCCEEDS)
    use(client, worker, held_host(held, answer=lambda _id: None))  # as for a PayPal capture it never named
    await made_ago(worker, held, minutes=61)
    await reconciliation(worker).run()
    payment = await _payment(worker, held)
    assert (payment["status"], payment["action_required"]) == ("pending", None)  # its webhook may still come
    assert payment["provider_checked_at"] is not None

    await made_ago(worker, held, minutes=FIVE_DAYS, checked_minutes=61)
    await reconciliation(worker).run()
    await made_ago(worker, held, minutes=FIVE_DAYS, checked_minutes=61)
    await reconciliation(worker).run()  # shown once, then no longer asked by the job

    payment = await _payment(worker, held)
    assert payment["status"] == "pending"
    assert "cannot say how it stands now" in payment["action_required"]
    assert await event_types(worker, held.setup.tenant, "payment", held.payment) == [
        "payment.created",
        "payment.action_required",
    ]
    assert held.asked == [held.provider_payment_id] * 2

    # The tenant checked at the provider: the charge failed. Dunning takes the invoice.
    path = f"/v1/payments/{held.payment}/resolve"
    resolved = await client.post(path, json={"outcome": "failed"}, headers=held.setup.tenant.headers)
    assert resolved.status_code == 200, resolved.text
    shown = resolved.json()
    assert (shown["status"], shown["failure_code"], shown["action_required"]) == ("failed", "resolved_by_tenant", None)
    invoice = await one(worker, held.setup.tenant, INVOICE)
    assert (invoice["status"], invoice["attempt_count"]) == ("open", 1)


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        ("pending", "still holds it as pending"),
        ("unreachable", "could not be asked: connection refused"),
        ("broken", "the provider's plugin failed"),  # an adapter's own bug, as for no answer
    ],
)
async def test_without_a_settled_answer_for_five_days_the_tenant_is_shown_the_last_one(
    client: Client, admin_headers: dict[str, str], worker: Runtime, answer: str, said: str
) -> None:
    held = await held_payment(client, admin_headers, worker, PENDING_SUCCEEDS)
    broken = _broken if answer == "broken" else None
    use(client, worker, held_host(held, settles_after=10**9, down=answer == "unreachable", answer=broken))
    await made_ago(worker, held, minutes=FIVE_DAYS - 2, checked_minutes=61)
    await reconciliation(worker).run()
    assert (await _payment(worker, held))["action_required"] is None

    await made_ago(worker, held, minutes=FIVE_DAYS, checked_minutes=61)
    await reconciliation(worker).run()

    payment = await _payment(worker, held)
    assert payment["status"] == "pending"
    assert said in payment["action_required"]
    assert held.asked == [held.provider_payment_id] * 2


async def test_at_a_provider_that_cannot_be_asked_the_tenant_is_shown_it_after_five_days(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    held = await held_payment(client, admin_headers, worker, PENDING_SUCCEEDS)
    use(client, worker, held_host(held, capable=False))  # charge_status would fail the test
    headers = held.setup.tenant.headers
    await made_ago(worker, held, minutes=61)
    await reconciliation(worker).run()
    payment = await _payment(worker, held)
    assert (payment["status"], payment["action_required"]) == ("pending", None)
    assert payment["provider_checked_at"] is not None  # passed over for an hour

    refused = await client.post(f"/v1/payments/{held.payment}/sync", headers=headers)
    assert (refused.status_code, refused.json()["errors"][0]["field"]) == (422, "payment_id")
    assert "payment_status" in refused.json()["errors"][0]["message"]
    early = await client.post(f"/v1/payments/{held.payment}/resolve", json={"outcome": "failed"}, headers=headers)
    assert early.status_code == 409, early.text  # a bank debit may still clear: its webhook settles it
    assert (await _payment(worker, held))["status"] == "pending"

    await made_ago(worker, held, minutes=FIVE_DAYS, checked_minutes=61)
    await reconciliation(worker).run()
    payment = await _payment(worker, held)
    assert payment["status"] == "pending"
    assert "cannot be asked about a charge" in payment["action_required"]
    assert await types(worker, held.setup.tenant, "payment") == ["payment.created", "payment.action_required"]

    wrong = await client.post(
        f"/v1/payments/{held.payment}/resolve",
        json={"outcome": "succeeded", "provider_payment_id": "sbx_pay_other"},
        headers=headers,
    )
    assert (wrong.status_code, wrong.json()["errors"][0]["field"]) == (422, "provider_payment_id")
    assert (await _payment(worker, held))["status"] == "pending"  # nothing written

    resolved = await client.post(f"/v1/payments/{held.payment}/resolve", json={"outcome": "succeeded"}, headers=headers)
    assert resolved.status_code == 200, resolved.text
    assert (resolved.json()["status"], resolved.json()["action_required"]) == ("succeeded", None)
    invoice = await one(worker, held.setup.tenant, INVOICE)
    assert (invoice["status"], invoice["amount_paid"]) == ("paid", invoice["total"])


async def test_sync_by_hand_asks_at_once_and_resolve_refuses_what_can_be_asked(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    held = await held_payment(client, admin_headers, worker, PENDING_SUCCEEDS)
    headers = held.setup.tenant.headers
    use(client, worker, held_host(held, settles_after=3600))

    by_hand = await client.post(f"/v1/payments/{held.payment}/resolve", json={"outcome": "failed"}, headers=headers)
    assert by_hand.status_code == 409, by_hand.text
    assert f"/v1/payments/{held.payment}/sync" in by_hand.json()["detail"]

    still = await client.post(f"/v1/payments/{held.payment}/sync", headers=headers)
    assert still.status_code == 200, still.text
    assert still.json()["status"] == "pending"

    use(client, worker, held_host(held))
    synced = await client.post(f"/v1/payments/{held.payment}/sync", headers=headers)
    assert synced.status_code == 200, synced.text
    assert synced.json()["status"] == "succeeded"
    assert held.asked == [held.provider_payment_id] * 2
    assert (await one(worker, held.setup.tenant, INVOICE))["status"] == "paid"

    use(client, worker, held_host(held, down=True))
    again = await client.post(f"/v1/payments/{held.payment}/sync", headers=headers)
    assert again.status_code == 409  # settled: nothing to ask about
    assert len(held.asked) == 2


async def test_sync_by_hand_answers_502_when_the_plugin_fails_on_its_own_and_changes_nothing(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    held = await held_payment(client, admin_headers, worker, PENDING_SUCCEEDS)
    use(client, worker, held_host(held, answer=_broken))
    before = (await _payment(worker, held), await types(worker, held.setup.tenant, "payment"))

    failed = await client.post(f"/v1/payments/{held.payment}/sync", headers=held.setup.tenant.headers)

    assert failed.status_code == 502, failed.text
    assert failed.json()["code"] == "bad_gateway"
    assert held.asked == [held.provider_payment_id]
    assert (await _payment(worker, held), await types(worker, held.setup.tenant, "payment")) == before


class _UpgradedCredentials(msgspec.Struct, forbid_unknown_fields=True):
    api_key: str
    region: str  # new in the upgraded plugin: the stored credentials have none


async def test_sync_by_hand_does_not_blame_the_plugin_for_billplanes_own_failure(
    client: Client, admin_headers: dict[str, str], worker: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    """The account's stored credentials cannot be opened (they no longer fit the upgraded plugin's
    schema): billplane fails before the adapter is asked, which is no 502 of the plugin's."""
    held = await held_payment(client, admin_headers, worker, PENDING_SUCCEEDS)
    upgraded = PluginHost(["sandbox"])
    upgraded.register(dataclasses.replace(held_host(held).get("sandbox"), credentials_type=_UpgradedCredentials))
    use(client, worker, upgraded)
    before = (await _payment(worker, held), await types(worker, held.setup.tenant, "payment"))

    with caplog.at_level(logging.ERROR):
        failed = await client.post(f"/v1/payments/{held.payment}/sync", headers=held.setup.tenant.headers)

    assert failed.status_code == 500, failed.text
    assert failed.json()["code"] == "error"
    assert "plugin" not in failed.text
    assert held.asked == []  # the adapter was never asked
    assert (await _payment(worker, held), await types(worker, held.setup.tenant, "payment")) == before
    assert not [record for record in caplog.records if record.name == "billplane.payments"]
    assert "CredentialsUnavailableError" in caplog.text  # logged as billplane's own failure


async def test_a_webhook_that_settles_it_first_wins_and_nothing_is_recorded_twice(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    held = await held_payment(client, admin_headers, worker, PENDING_SUCCEEDS)
    use(client, worker, held_host(held))
    async with worker.database.tenant_session(held.setup.tenant.schema) as session:
        row = await session.get(Payment, held.payment)
        assert row is not None
        read = pending_charge(row)  # what the job read before it asked
    assert read is not None

    await its_webhook_succeeded(client, worker, held)
    assert (await _payment(worker, held))["status"] == "succeeded"

    # The job's answer arrives after the webhook's (and, here, disagrees): the webhook won.
    late = ChargeResult(provider_payment_id=held.provider_payment_id, status="failed", failure_code="debit_failed")
    async with worker.database.tenant_session(held.setup.tenant.schema) as session:
        now = await database_now(worker)
        recorded = await pending_charges.record_answer(session, read, late, now=now, flag_after=timedelta(days=5))
    assert recorded == "unchanged"
    assert (await _payment(worker, held))["status"] == "succeeded"
    assert await event_types(worker, held.setup.tenant, "payment", held.payment) == [
        "payment.created",
        "payment.succeeded",
    ]


async def test_a_charge_that_clears_after_its_invoice_was_paid_again_is_shown_as_paid_twice(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    """The tenant resolved the charge as failed, dunning charged again and was paid, and then the
    first charge cleared after all: the money is recorded, and the tenant told to refund one."""
    held = await held_payment(client, admin_headers, worker, PENDING_SUCCEEDS)
    use(client, worker, held_host(held, capable=False))
    await made_ago(worker, held, minutes=FIVE_DAYS)
    await reconciliation(worker).run()
    resolved = await client.post(
        f"/v1/payments/{held.payment}/resolve", json={"outcome": "failed"}, headers=held.setup.tenant.headers
    )
    assert resolved.status_code == 200, resolved.text
    await set_default_method(worker, held.setup, SUCCEEDS)
    await execute(
        worker, held.setup.tenant, "UPDATE invoices SET next_payment_attempt_at = now() - interval '1 minute'"
    )
    await DunningRun(worker.database, worker.jobs, worker.accounts).run()
    await drain(worker)
    invoice = await one(worker, held.setup.tenant, INVOICE)
    assert (invoice["status"], invoice["amount_paid"]) == ("paid", invoice["total"])

    await its_webhook_succeeded(client, worker, held)

    payment = await _payment(worker, held)
    assert payment["status"] == "succeeded"  # the money moved: recorded as it is
    assert f"invoice {held.invoice} was already paid" in payment["action_required"]
    assert (await one(worker, held.setup.tenant, INVOICE))["amount_paid"] == invoice["total"]
    assert (await event_types(worker, held.setup.tenant, "payment", held.payment))[-2:] == [
        "payment.succeeded",
        "payment.action_required",
    ]


async def test_resolved_as_the_payment_its_webhook_recorded_under_another_id_the_money_counts_once(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    """PayPal reports a capture it accepted without naming it under its sale's id: billplane
    recorded that as a payment of its own, on no invoice. The tenant names it when resolving."""
    held = await held_payment(client, admin_headers, worker, PENDING_SUCCEEDS)
    use(client, worker, held_host(held, capable=False))
    await made_ago(worker, held, minutes=FIVE_DAYS)
    await reconciliation(worker).run()
    sale = await one(
        worker, held.setup.tenant,
        "INSERT INTO payments (customer_id, amount, currency, status, provider, provider_account_id, "
        "provider_payment_id) SELECT customer_id, amount, currency, 'succeeded', provider, provider_account_id, "
        "'sbx_sale_from_webhook' FROM payments WHERE id = :id RETURNING id",
        id=held.payment,
    )  # fmt: skip

    await one(
        worker, held.setup.tenant,
        "INSERT INTO payments (customer_id, amount, currency, status, provider, provider_account_id, "
        "provider_payment_id) SELECT customer_id, amount, currency, 'failed', provider, provider_account_id, "
        "'sbx_sale_that_failed' FROM payments WHERE id = :id RETURNING id",
        id=held.payment,
    )  # fmt: skip
    path, headers = f"/v1/payments/{held.payment}/resolve", held.setup.tenant.headers
    failed = await client.post(
        path, json={"outcome": "succeeded", "provider_payment_id": "sbx_sale_that_failed"}, headers=headers
    )
    assert failed.status_code == 409, failed.text  # that charge did not go through: not this payment's success
    assert (await _payment(worker, held))["status"] == "pending"

    resolved = await client.post(
        path, json={"outcome": "succeeded", "provider_payment_id": "sbx_sale_from_webhook"}, headers=headers
    )

    assert resolved.status_code == 200, resolved.text
    assert (resolved.json()["status"], resolved.json()["failure_code"]) == ("canceled", "duplicate")
    taken = await one(worker, held.setup.tenant, "SELECT invoice_id FROM payments WHERE id = :id", id=sale["id"])
    assert taken["invoice_id"] == held.invoice
    invoice = await one(worker, held.setup.tenant, INVOICE)
    assert (invoice["status"], invoice["amount_paid"]) == ("paid", invoice["total"])

    # The canceled payment's own webhook, late: the money is already counted on the other one.
    await its_webhook_succeeded(client, worker, held)
    after = await _payment(worker, held)
    assert (after["status"], after["action_required"]) == ("canceled", None)
    assert (await event_types(worker, held.setup.tenant, "payment", held.payment))[-1] == "payment.canceled"
