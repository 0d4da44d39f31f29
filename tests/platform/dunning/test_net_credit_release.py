"""A subscription that ends leaves its customer only the credit its own pending charges do not
absorb (``billing.customer_credit``): its pending items are settled among themselves as its next
invoice would have at 0, and the charges, never billed, keep the credits that offset them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from billplane_sandbox.payment_methods import DECLINED, SUCCEEDS

from billplane.runtime import Runtime
from tests.platform.dunning.helpers import Client, Setup, another_plan, on_a_clock, sandbox_customer
from tests.platform.dunning.test_dunning import _renewal_fails, _retry_now
from tests.platform.sync_fakes import drain
from tests.platform.test_clocks.test_advance import _advance

SEAT = 1000
T0 = datetime(2031, 3, 10, 12, tzinfo=UTC)  # ten days on, 21 of March's 31 days are left: 677 a seat


async def _ten_days_into(
    client: Client, admin_headers: dict[str, str], worker: Runtime, prefix: str, seats: int
) -> tuple[Setup, int, int]:
    """A clocked customer subscribed at ``seats`` seats (``SEAT`` each, the first month invoiced
    and paid at once), the clock then ten days on: the setup, the per-seat plan, the subscription."""
    setup, clock = await on_a_clock(client, admin_headers, worker, SUCCEEDS, frozen_time=T0, prefix=prefix)
    plan = await another_plan(client, setup, pricing_model="per_seat", amount=SEAT)
    subscription = await _subscribe(client, setup, plan, seats)
    await drain(worker)
    [first] = await _invoices(client, setup, subscription)
    assert (first["total"], first["status"]) == (seats * SEAT, "paid")
    await _advance(client, worker, setup, clock, T0 + timedelta(days=10))
    return setup, plan, subscription


async def _subscribe(client: Client, setup: Setup, plan: int, seats: int) -> int:
    body = {"customer_id": setup.customer, "plan_id": plan, "quantity": seats}
    created = await client.post("/v1/subscriptions", json=body, headers=setup.tenant.headers)
    assert created.status_code == 201, created.text
    subscription: int = created.json()["id"]
    return subscription


async def _seats(client: Client, setup: Setup, subscription: int, seats: int) -> None:
    body = {"quantity": seats, "proration": "create_prorations"}
    changed = await client.patch(f"/v1/subscriptions/{subscription}", json=body, headers=setup.tenant.headers)
    assert changed.status_code == 200, changed.text


async def _cancel_now(client: Client, setup: Setup, subscription: int) -> None:
    canceled = await client.post(f"/v1/subscriptions/{subscription}/cancel", json={}, headers=setup.tenant.headers)
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["status"] == "canceled"


async def _pending(client: Client, setup: Setup) -> list[tuple[int | None, int]]:
    """The customer's pending items, in id order: (subscription_id, amount); None is the customer's."""
    url = f"/v1/invoice-items?customer_id={setup.customer}&pending=true"
    shown = await client.get(url, headers=setup.tenant.headers)
    assert shown.status_code == 200, shown.text
    return [(item["subscription_id"], item["amount"]) for item in shown.json()["data"]]


async def _invoices(client: Client, setup: Setup, subscription: int) -> list[dict[str, Any]]:
    shown = await client.get(f"/v1/invoices?subscription_id={subscription}", headers=setup.tenant.headers)
    assert shown.status_code == 200, shown.text
    invoices: list[dict[str, Any]] = shown.json()["data"]
    return invoices


def _released(pending: list[tuple[int | None, int]]) -> list[int]:
    return [amount for subscription, amount in pending if subscription is None]


async def test_an_upgrade_undone_then_canceled_leaves_no_credit_for_money_never_paid(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup, plan, ended = await _ten_days_into(client, admin_headers, worker, "netundo", 1)
    await _seats(client, setup, ended, 5)
    await _seats(client, setup, ended, 1)
    assert await _pending(client, setup) == [(ended, -677), (ended, 3387), (ended, -3387), (ended, 677)]

    await _cancel_now(client, setup, ended)

    # The charges, never billed, absorb both credits: nothing is the customer's, nothing moves.
    assert await _pending(client, setup) == [(ended, -677), (ended, 3387), (ended, -3387), (ended, 677)]
    subscription = await _subscribe(client, setup, plan, 4)
    await drain(worker)
    [first] = await _invoices(client, setup, subscription)
    assert (first["total"], first["status"]) == (4 * SEAT, "paid")  # only the 1000 paid ever, no credit


async def test_a_downgrade_then_canceled_releases_the_net_credit_as_one_item(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup, _, ended = await _ten_days_into(client, admin_headers, worker, "netdown", 10)
    await _seats(client, setup, ended, 1)
    before = await _pending(client, setup)
    assert before == [(ended, -6774), (ended, 677)]  # 21/31 of 10 seats' month, and of 1 seat's

    await _cancel_now(client, setup, ended)

    after = await _pending(client, setup)
    assert _released(after) == [-6774 + 677]  # one item, the net: split off the credit
    assert sum(amount for _, amount in after) == sum(amount for _, amount in before)  # nothing lost or made
    # The part of the credit that offsets the charge stays with it on the ended subscription.
    assert [item for item in after if item[0] is not None] == [(ended, -677), (ended, 677)]


async def test_a_charge_larger_than_the_credits_releases_nothing(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup, _, ended = await _ten_days_into(client, admin_headers, worker, "netup", 1)
    await _seats(client, setup, ended, 5)

    await _cancel_now(client, setup, ended)

    assert await _pending(client, setup) == [(ended, -677), (ended, 3387)]


async def test_dunnings_final_cancel_releases_only_the_credit_left_over_the_charges(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    setup = await sandbox_customer(client, admin_headers, worker, DECLINED, "netdun")
    body = {"dunning_retry_days": [1], "dunning_final_action": "cancel"}
    assert (await client.patch("/v1/billing-settings", json=body, headers=setup.tenant.headers)).status_code == 200
    subscription, invoice_id = await _renewal_fails(client, worker, setup)
    for amount, description in ((-800, "Goodwill"), (500, "Setup")):
        item = {"customer_id": setup.customer, "subscription_id": subscription, "amount": amount,
                "currency": "USD", "description": description}  # fmt: skip
        added = await client.post("/v1/invoice-items", json=item, headers=setup.tenant.headers)
        assert added.status_code == 201, added.text

    await _retry_now(worker, setup, invoice_id)  # the last retry fails: the subscription is canceled

    shown = (await client.get(f"/v1/subscriptions/{subscription}", headers=setup.tenant.headers)).json()
    assert shown["status"] == "canceled"
    # The charge takes 500 of the credit, split off it; only the other 300 is the customer's.
    assert await _pending(client, setup) == [(subscription, -500), (subscription, 500), (None, -300)]
