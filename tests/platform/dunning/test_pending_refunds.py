"""Refunds nothing settled: the reconciliation job asks the provider how a pending refund stands
(at most hourly) and records a settled answer as its webhook would have; what it cannot learn, and
a refund billplane could not confirm, it shows to the tenant, who settles it by hand."""

from __future__ import annotations

from typing import Any

import pytest

from billplane.plugins import RefundResult
from billplane.provider_accounts.models import ProviderAccount
from billplane.provider_accounts.repository import ProviderAccountRepository
from billplane.runtime import Runtime
from tests.conftest import create_tenant
from tests.platform.dunning.held import use
from tests.platform.dunning.held_refunds import (
    ANOTHER_REFUND,
    Answer,
    events_of,
    its_webhook,
    made_ago,
    refund_host,
    refund_row,
    refunded_amount,
    sandbox_refund_id,
    settles,
    waiting_refund,
)
from tests.platform.dunning.helpers import Client, execute
from tests.platform.dunning.stuck import reconciliation
from tests.platform.invoices.helpers import event_types

FIVE_DAYS = 5 * 24 * 60 + 1  # minutes: past BILLPLANE_PAYMENT_PENDING_FLAG_HOURS' default


@pytest.mark.parametrize(("status", "reserved"), [("succeeded", 400), ("failed", 0)])
async def test_a_refund_whose_webhook_never_came_is_settled_from_the_provider_after_an_hour(
    client: Client, admin_headers: dict[str, str], worker: Runtime, status: str, reserved: int
) -> None:
    waiting = await waiting_refund(client, admin_headers, worker)
    refund = await refund_row(worker, waiting)
    assert (refund["status"], refund["provider_refund_id"][:7]) == ("pending", "sbx_re_")
    use(client, worker, refund_host(waiting, answer=settles(status)))
    await made_ago(worker, waiting, minutes=59)
    await reconciliation(worker).run()
    assert waiting.asked == []  # too recent: its webhook may still come

    await made_ago(worker, waiting, minutes=61)
    await reconciliation(worker).run()

    assert waiting.asked == [refund["provider_refund_id"]]
    assert (await refund_row(worker, waiting))["status"] == status
    # A failed refund gives its amount back to the payment, to be refunded again.
    assert await refunded_amount(worker, waiting) == reserved
    assert await event_types(worker, waiting.setup.tenant, "refund", waiting.refund) == [
        "refund.created",
        f"refund.{status}",
    ]
    await reconciliation(worker).run()  # settled: never asked again
    assert len(waiting.asked) == 1


async def test_a_refund_still_pending_is_asked_hourly_then_shown_to_the_tenant_after_five_days(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    waiting = await waiting_refund(client, admin_headers, worker)
    use(client, worker, refund_host(waiting, answer=settles("pending")))
    await made_ago(worker, waiting, minutes=61)
    await reconciliation(worker).run()
    await reconciliation(worker).run()  # asked a moment ago: not again within the hour
    refund = await refund_row(worker, waiting)
    assert (len(waiting.asked), refund["status"], refund["action_required"]) == (1, "pending", None)
    assert refund["provider_checked_at"] is not None

    await made_ago(worker, waiting, minutes=FIVE_DAYS)
    await reconciliation(worker).run()
    refund = await refund_row(worker, waiting)
    assert refund["status"] == "pending"
    assert "sandbox still holds it as pending" in refund["action_required"]
    assert f"POST /v1/refunds/{waiting.refund}/resolve" in refund["action_required"]
    assert await refunded_amount(worker, waiting) == 400  # still reserved: it may yet go through

    await reconciliation(worker).run()  # shown once, and left to the tenant
    assert len(waiting.asked) == 2
    assert await event_types(worker, waiting.setup.tenant, "refund", waiting.refund) == [
        "refund.created",
        "refund.action_required",
    ]
    await its_webhook(client, worker, waiting, "succeeded")  # the webhook still settles it
    refund = await refund_row(worker, waiting)
    assert (refund["status"], refund["action_required"]) == ("succeeded", None)


@pytest.mark.parametrize("capable", [False, True])
async def test_a_provider_that_cannot_be_asked_or_answer_leaves_the_refund_to_wait_then_to_the_tenant(
    client: Client, admin_headers: dict[str, str], worker: Runtime, *, capable: bool
) -> None:
    waiting = await waiting_refund(client, admin_headers, worker)
    # Without the capability it is never asked; with it, the provider is down.
    use(client, worker, refund_host(waiting, capable=capable, down=True))
    await made_ago(worker, waiting, minutes=61)
    await reconciliation(worker).run()
    assert (await refund_row(worker, waiting))["action_required"] is None

    await made_ago(worker, waiting, minutes=FIVE_DAYS)
    await reconciliation(worker).run()
    shown = (await refund_row(worker, waiting))["action_required"]
    why = "could not be asked: connection refused" if capable else "accounts cannot be asked about a refund"
    assert why in shown
    assert len(waiting.asked) == (2 if capable else 0)


async def test_a_refund_never_confirmed_that_cannot_be_looked_up_is_shown_to_the_tenant_and_never_sent_again(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    waiting = await waiting_refund(client, admin_headers, worker, unanswered=True)
    refund = await refund_row(worker, waiting)
    assert (refund["status"], refund["provider_refund_id"]) == ("pending", None)
    use(client, worker, refund_host(waiting, lookup=False))  # without refund_lookup
    await made_ago(worker, waiting, minutes=9)
    await reconciliation(worker).run()
    assert (await refund_row(worker, waiting))["action_required"] is None  # a request in flight may still land

    await made_ago(worker, waiting, minutes=11)
    await reconciliation(worker).run()
    shown = (await refund_row(worker, waiting))["action_required"]
    assert "billplane could not confirm this refund" in shown
    assert "connection reset" in shown  # what its request met, in the row's words
    assert waiting.asked == []  # a refund with no id cannot be read
    assert waiting.looked_up == []  # nor looked up, without refund_lookup
    assert await refunded_amount(worker, waiting) == 400
    assert await event_types(worker, waiting.setup.tenant, "refund", waiting.refund) == [
        "refund.created",
        "refund.action_required",
    ]


async def test_resolve_settles_a_shown_refund_from_what_the_tenant_found(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    waiting = await waiting_refund(client, admin_headers, worker, unanswered=True)
    url, headers = f"/v1/refunds/{waiting.refund}/resolve", waiting.setup.tenant.headers
    early = await client.post(url, json={"outcome": "failed"}, headers=headers)
    assert early.status_code == 409, early.text  # not shown yet: billplane still waits
    assert "still waiting" in early.json()["detail"]

    use(client, worker, refund_host(waiting, lookup=False))
    await made_ago(worker, waiting, minutes=11)
    await reconciliation(worker).run()
    before = (await refund_row(worker, waiting), await events_of(worker, waiting))
    refusals = [
        ({}, "outcome"),
        ({"outcome": "succeeded"}, "provider_refund_id"),  # which refund there?
        ({"outcome": "failed", "provider_refund_id": "re_1"}, "provider_refund_id"),
        ({"outcome": "succeeded", "provider_refund_id": "re_mistyped"}, "provider_refund_id"),  # the sandbox has none
    ]
    for body, field in refusals:
        refused = await client.post(url, json=body, headers=headers)
        assert (refused.status_code, refused.json()["errors"][0]["field"]) == (422, field), refused.text
    other = await create_tenant(client, admin_headers, "refwait")
    assert (await client.post(url, json={"outcome": "failed"}, headers=other.headers)).status_code == 404
    too_big = await client.post("/v1/refunds/9223372036854775808/resolve", json={"outcome": "failed"}, headers=headers)
    assert too_big.status_code == 404, too_big.text
    # Nothing written by a refusal.
    assert (await refund_row(worker, waiting), await events_of(worker, waiting)) == before
    assert await refunded_amount(worker, waiting) == 400

    found = sandbox_refund_id(waiting)  # the refund the tenant found at the sandbox
    resolved = await client.post(url, json={"outcome": "succeeded", "provider_refund_id": found}, headers=headers)
    assert resolved.status_code == 200, resolved.text
    shown = resolved.json()
    assert (shown["status"], shown["provider_refund_id"], shown["action_required"]) == ("succeeded", found, None)
    assert await refunded_amount(worker, waiting) == 400
    again = await client.post(url, json={"outcome": "failed"}, headers=headers)
    assert again.status_code == 409, again.text  # settled: nothing to resolve


def _broken(_provider_refund_id: str) -> RefundResult:
    raise KeyError("a bug of the plugin's own")


@pytest.mark.parametrize(
    ("answer", "down", "status"),
    [(settles("pending"), False, 409), (settles("failed"), False, 409), (None, True, 503), (_broken, False, 502)],
)
async def test_resolve_succeeded_waits_for_a_refund_the_provider_has_not_refunded(
    client: Client, admin_headers: dict[str, str], worker: Runtime, answer: Answer | None, *, down: bool, status: int
) -> None:
    waiting = await waiting_refund(client, admin_headers, worker, unanswered=True)
    use(client, worker, refund_host(waiting, lookup=False))
    await made_ago(worker, waiting, minutes=11)
    await reconciliation(worker).run()
    use(client, worker, refund_host(waiting, answer=answer, down=down))

    found = sandbox_refund_id(waiting)
    body = {"outcome": "succeeded", "provider_refund_id": found}
    refused = await client.post(
        f"/v1/refunds/{waiting.refund}/resolve", json=body, headers=waiting.setup.tenant.headers
    )

    assert refused.status_code == status, refused.text
    assert waiting.asked == [found]
    assert (await refund_row(worker, waiting))["status"] == "pending"


async def test_resolve_failed_gives_a_held_refunds_amount_back_and_keeps_its_provider_id(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    waiting = await waiting_refund(client, admin_headers, worker)
    provider_refund_id = (await refund_row(worker, waiting))["provider_refund_id"]
    use(client, worker, refund_host(waiting, answer=lambda _id: None))  # the sandbox cannot read it
    await made_ago(worker, waiting, minutes=FIVE_DAYS)
    await reconciliation(worker).run()
    assert "no refund it can read by that id" in (await refund_row(worker, waiting))["action_required"]
    url, headers = f"/v1/refunds/{waiting.refund}/resolve", waiting.setup.tenant.headers

    wrong = await client.post(url, json={"outcome": "failed", "provider_refund_id": "re_other"}, headers=headers)
    assert (wrong.status_code, wrong.json()["errors"][0]["field"]) == (422, "provider_refund_id")
    resolved = await client.post(url, json={"outcome": "failed"}, headers=headers)
    assert resolved.status_code == 200, resolved.text
    assert (resolved.json()["status"], resolved.json()["provider_refund_id"]) == ("failed", provider_refund_id)
    assert await refunded_amount(worker, waiting) == 0


async def test_a_held_refund_whose_account_is_gone_is_shown_at_once(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    waiting = await waiting_refund(client, admin_headers, worker)
    use(client, worker, refund_host(waiting))
    async with worker.database.control_session() as session:  # as DELETE leaves it, past its checks
        account = await session.get(ProviderAccount, waiting.setup.account)
        assert account is not None
        await ProviderAccountRepository(session, waiting.setup.tenant.id).mark_deleted(account)
    await made_ago(worker, waiting, minutes=61)  # an hour old, not five days: nobody will ever ask

    await reconciliation(worker).run()

    refund = await refund_row(worker, waiting)
    assert (refund["status"], waiting.asked) == ("pending", [])
    assert "was deleted" in refund["action_required"]


async def test_resolve_refuses_a_provider_refund_already_recorded_by_its_webhook(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    waiting = await waiting_refund(client, admin_headers, worker, unanswered=True)
    use(client, worker, refund_host(waiting, lookup=False))
    await made_ago(worker, waiting, minutes=11)
    await reconciliation(worker).run()
    # The provider's webhook, not naming billplane's refund, recorded the same refund as its own.
    await execute(
        worker, waiting.setup.tenant,
        "INSERT INTO refunds (payment_id, amount, currency, status, provider_refund_id) "
        "VALUES (:payment, 400, 'USD', 'succeeded', 're_seen')", payment=waiting.payment,
    )  # fmt: skip
    url, headers = f"/v1/refunds/{waiting.refund}/resolve", waiting.setup.tenant.headers

    twice = await client.post(url, json={"outcome": "succeeded", "provider_refund_id": "re_seen"}, headers=headers)
    assert twice.status_code == 409, twice.text
    assert "resolve this one as failed" in twice.json()["detail"]
    assert (await refund_row(worker, waiting))["status"] == "pending"


async def test_sync_asks_the_provider_about_a_held_refund_at_once(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    waiting = await waiting_refund(client, admin_headers, worker)
    url, headers = f"/v1/refunds/{waiting.refund}/sync", waiting.setup.tenant.headers
    provider_refund_id = (await refund_row(worker, waiting))["provider_refund_id"]

    use(client, worker, refund_host(waiting, answer=settles("pending")))
    still = await client.post(url, headers=headers)
    assert (still.status_code, still.json()["status"]) == (200, "pending")  # no wait: asked at once
    use(client, worker, refund_host(waiting, capable=False))
    cannot = await client.post(url, headers=headers)
    assert (cannot.status_code, cannot.json()["errors"][0]["field"]) == (422, "refund_id"), cannot.text
    use(client, worker, refund_host(waiting, down=True))
    assert (await client.post(url, headers=headers)).status_code == 503
    other = await create_tenant(client, admin_headers, "refwait")
    assert (await client.post(url, headers=other.headers)).status_code == 404

    use(client, worker, refund_host(waiting, answer=settles("failed")))
    settled = await client.post(url, headers=headers)
    assert (settled.status_code, settled.json()["status"]) == (200, "failed"), settled.text
    assert await refunded_amount(worker, waiting) == 0  # given back, as its webhook would have
    assert waiting.asked == [provider_refund_id] * 3  # pending, unreachable, failed; never without the capability
    assert (await client.post(url, headers=headers)).status_code == 409  # settled: nothing to ask


@pytest.mark.parametrize(("unlike", "why"), ANOTHER_REFUND)
async def test_resolve_succeeded_refuses_a_provider_refund_that_is_another(
    client: Client, admin_headers: dict[str, str], worker: Runtime, unlike: dict[str, Any], why: str
) -> None:
    waiting = await waiting_refund(client, admin_headers, worker, unanswered=True)
    use(client, worker, refund_host(waiting, lookup=False))
    await made_ago(worker, waiting, minutes=11)
    await reconciliation(worker).run()

    def another(provider_refund_id: str) -> RefundResult:
        return RefundResult(provider_refund_id=provider_refund_id, status="succeeded", **unlike)

    use(client, worker, refund_host(waiting, answer=another))
    body = {"outcome": "succeeded", "provider_refund_id": sandbox_refund_id(waiting)}
    refused = await client.post(
        f"/v1/refunds/{waiting.refund}/resolve", json=body, headers=waiting.setup.tenant.headers
    )
    assert (refused.status_code, refused.json()["errors"][0]["field"]) == (422, "provider_refund_id"), refused.text
    assert why in refused.json()["errors"][0]["message"]
    assert (await refund_row(worker, waiting))["status"] == "pending"
