"""The provider's word about a refund after billplane settled it: a refund the tenant resolved
failed that the provider refunded after all takes its amount again (or, when refunds made since
leave no room, is shown to the tenant); a refund that failed after it succeeded gives its amount
back. A failure the provider reported stays final."""

from __future__ import annotations

from billplane.runtime import Runtime
from tests.platform.dunning.held import use
from tests.platform.dunning.held_refunds import (
    WaitingRefund,
    events_of,
    its_webhook,
    made_ago,
    refund_host,
    refund_row,
    refunded_amount,
    settles,
    waiting_refund,
)
from tests.platform.dunning.helpers import Client, Setup, execute, one
from tests.platform.dunning.stuck import reconciliation
from tests.platform.sync_fakes import drain

FIVE_DAYS = 5 * 24 * 60 + 1  # minutes: past BILLPLANE_PAYMENT_PENDING_FLAG_HOURS' default


async def failure(worker: Runtime, waiting: WaitingRefund) -> str:
    query = "SELECT failure_code, failure_message FROM refunds WHERE id = :id"
    row = await one(worker, waiting.setup.tenant, query, id=waiting.refund)
    return f"{row['failure_code']}: {row['failure_message']}"


async def _resolved_failed(client: Client, admin_headers: dict[str, str], worker: Runtime) -> WaitingRefund:
    """A refund of 400 held as pending, shown to the tenant after five days, resolved failed."""
    waiting = await waiting_refund(client, admin_headers, worker)
    use(client, worker, refund_host(waiting, answer=settles("pending")))
    await made_ago(worker, waiting, minutes=FIVE_DAYS)
    await reconciliation(worker).run()
    url, headers = f"/v1/refunds/{waiting.refund}/resolve", waiting.setup.tenant.headers
    resolved = await client.post(url, json={"outcome": "failed"}, headers=headers)
    assert resolved.status_code == 200, resolved.text
    assert (resolved.json()["status"], resolved.json()["failure_code"]) == ("failed", "resolved_by_tenant")
    assert await refunded_amount(worker, waiting) == 0
    return waiting


async def test_a_refund_resolved_failed_that_the_provider_refunded_after_all_counts_again(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    waiting = await _resolved_failed(client, admin_headers, worker)

    await its_webhook(client, worker, waiting, "succeeded")

    refund = await refund_row(worker, waiting)
    assert (refund["status"], refund["action_required"]) == ("succeeded", None)
    assert await refunded_amount(worker, waiting) == 400  # reserved again: it went back to the customer
    assert await events_of(worker, waiting) == [
        "refund.created",
        "refund.action_required",
        "refund.failed",
        "refund.succeeded",
    ]


async def test_when_refunds_made_since_leave_no_room_the_tenant_is_shown_the_money_refunded_twice(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    waiting = await _resolved_failed(client, admin_headers, worker)
    use(client, worker, refund_host(waiting, answer=settles("succeeded")))
    again = await client.post(
        "/v1/refunds", json={"payment_id": waiting.payment}, headers=waiting.setup.tenant.headers
    )  # all that is left: the whole payment again
    assert again.status_code == 201, again.text
    await drain(worker)
    paid = await refunded_amount(worker, waiting)

    await its_webhook(client, worker, waiting, "succeeded")

    refund = await refund_row(worker, waiting)
    assert refund["status"] == "failed"  # billplane counts no more than was paid
    assert "400 USD more back than was paid" in refund["action_required"]
    assert await refunded_amount(worker, waiting) == paid
    assert (await events_of(worker, waiting))[-1] == "refund.action_required"


async def test_a_refund_that_failed_after_it_succeeded_gives_its_amount_back_once(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    waiting = await waiting_refund(client, admin_headers, worker)
    use(client, worker, refund_host(waiting, answer=settles("succeeded")))
    await made_ago(worker, waiting, minutes=61)
    await reconciliation(worker).run()
    assert (await refund_row(worker, waiting))["status"] == "succeeded"

    await its_webhook(client, worker, waiting, "failed")  # the card was closed since
    await its_webhook(client, worker, waiting, "succeeded")  # an older event, late: the failure is final
    await its_webhook(client, worker, waiting, "failed")  # and a repeat gives nothing back twice

    refund = await refund_row(worker, waiting)
    assert refund["status"] == "failed"
    assert await refunded_amount(worker, waiting) == 0
    assert await events_of(worker, waiting) == ["refund.created", "refund.succeeded", "refund.failed"]


async def test_a_refund_resolved_failed_that_the_provider_failed_stays_failed_whatever_comes_later(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    waiting = await _resolved_failed(client, admin_headers, worker)

    # At the provider it succeeded, then failed; the newer event arrives first.
    await its_webhook(client, worker, waiting, "failed")
    await its_webhook(client, worker, waiting, "succeeded")

    refund = await refund_row(worker, waiting)
    assert refund["status"] == "failed"
    assert await refunded_amount(worker, waiting) == 0  # never counted: the provider's last word is failed
    assert (await events_of(worker, waiting))[-1] == "refund.failed"  # the tenant's resolve; nothing since


async def test_a_refund_answered_with_a_provider_refund_its_webhook_recorded_first_counts_once(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    async def recorded_from_its_webhook(setup: Setup, payment: int) -> None:
        # The provider's webhook, not naming billplane's refund, came before the refund call's answer.
        await execute(
            worker, setup.tenant,
            "INSERT INTO refunds (payment_id, amount, currency, status, provider_refund_id) "
            "VALUES (:payment, 400, 'USD', 'pending', 're_seen_first')", payment=payment,
        )  # fmt: skip
        await execute(worker, setup.tenant, "UPDATE payments SET refunded_amount = 400 WHERE id = :id", id=payment)

    waiting = await waiting_refund(
        client, admin_headers, worker, before=recorded_from_its_webhook, answered_as="re_seen_first"
    )

    refund = await refund_row(worker, waiting)
    assert (refund["status"], refund["provider_refund_id"]) == ("failed", None)  # recorded once, by the other
    assert "records this provider refund (re_seen_first)" in (await failure(worker, waiting))
    assert await refunded_amount(worker, waiting) == 400  # the other's 400; this one's reservation given back
