"""POST /v1/payments/{id}/sync: the reconciliation of one payment, by hand, answering the payment."""

from __future__ import annotations

from billplane_sandbox.payment_methods import ANSWER_LOST, UNREACHABLE

from billplane.runtime import Runtime
from tests.conftest import create_tenant
from tests.platform.dunning.helpers import Client, execute, one
from tests.platform.dunning.stuck import INVOICE, PAYMENT, age, sandbox_host, stuck_renewal
from tests.platform.invoices.helpers import event_types


def _sync_path(payment_id: int) -> str:
    return f"/v1/payments/{payment_id}/sync"


async def test_a_lost_answer_is_found_and_the_payment_answered(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    stuck = await stuck_renewal(client, admin_headers, worker, ANSWER_LOST)
    await age(worker, stuck)

    response = await client.post(_sync_path(stuck.payment), headers=stuck.setup.tenant.headers)

    assert response.status_code == 200, response.text
    shown = response.json()
    assert (shown["id"], shown["status"], shown["action_required"]) == (stuck.payment, "succeeded", None)
    assert shown["provider_payment_id"].startswith("sbx_pay_")
    assert (await one(worker, stuck.setup.tenant, INVOICE))["status"] == "paid"
    assert await event_types(worker, stuck.setup.tenant, "payment", stuck.payment) == [
        "payment.created",
        "payment.succeeded",
    ]


async def test_a_charge_never_received_fails_the_payment(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    stuck = await stuck_renewal(client, admin_headers, worker, UNREACHABLE)
    await age(worker, stuck)

    response = await client.post(_sync_path(stuck.payment), headers=stuck.setup.tenant.headers)

    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["failure_code"]) == ("failed", "provider_unreachable")
    assert (await one(worker, stuck.setup.tenant, INVOICE))["attempt_count"] == 1


async def test_a_payment_that_is_not_stuck_is_a_conflict(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    stuck = await stuck_renewal(client, admin_headers, worker, ANSWER_LOST)
    headers = stuck.setup.tenant.headers

    too_recent = await client.post(_sync_path(stuck.payment), headers=headers)
    assert too_recent.status_code == 409, too_recent.text
    assert too_recent.headers["content-type"].startswith("application/problem+json")
    assert "ask again after" in too_recent.json()["detail"]
    assert (await one(worker, stuck.setup.tenant, PAYMENT))["status"] == "pending"

    await age(worker, stuck)
    assert (await client.post(_sync_path(stuck.payment), headers=headers)).status_code == 200
    settled = await client.post(_sync_path(stuck.payment), headers=headers)
    assert settled.status_code == 409
    assert "succeeded" in settled.json()["detail"]


async def test_a_payment_still_being_charged_is_a_conflict(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    stuck = await stuck_renewal(client, admin_headers, worker, ANSWER_LOST)
    await age(worker, stuck)
    await execute(worker, stuck.setup.tenant, "UPDATE outbox SET status = 'pending' WHERE kind = 'payment.charge'")
    response = await client.post(_sync_path(stuck.payment), headers=stuck.setup.tenant.headers)
    assert response.status_code == 409
    assert "still being attempted" in response.json()["detail"]


async def test_another_tenants_payment_is_not_found(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    theirs = await stuck_renewal(client, admin_headers, worker, ANSWER_LOST)
    await age(worker, theirs)
    mine = await create_tenant(client, admin_headers, "rec")

    response = await client.post(_sync_path(theirs.payment), headers=mine.headers)

    assert response.status_code == 404
    assert (await one(worker, theirs.setup.tenant, PAYMENT))["status"] == "pending"


async def test_a_provider_that_cannot_look_payments_up_is_refused_naming_the_payment(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    stuck = await stuck_renewal(client, admin_headers, worker, ANSWER_LOST)
    await age(worker, stuck)
    app_runtime: Runtime = client.app.state.runtime
    app_runtime.plugins = sandbox_host(lookup=False)  # find_payment would fail the test if called

    response = await client.post(_sync_path(stuck.payment), headers=stuck.setup.tenant.headers)

    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "payment_id"
    assert "payment_lookup" in response.json()["errors"][0]["message"]
    payment = await one(worker, stuck.setup.tenant, PAYMENT)
    assert (payment["status"], payment["provider_payment_id"]) == ("pending", None)


async def test_an_unreachable_provider_is_unavailable_and_changes_nothing(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    stuck = await stuck_renewal(client, admin_headers, worker, ANSWER_LOST)
    await age(worker, stuck)
    app_runtime: Runtime = client.app.state.runtime
    app_runtime.plugins = sandbox_host(down=True)

    response = await client.post(_sync_path(stuck.payment), headers=stuck.setup.tenant.headers)

    assert response.status_code == 503, response.text
    assert "ask again later" in response.json()["detail"]
    payment = await one(worker, stuck.setup.tenant, PAYMENT)
    assert (payment["status"], payment["provider_payment_id"], payment["action_required"]) == ("pending", None, None)
