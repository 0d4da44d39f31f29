"""Refunds billplane could not confirm, looked up at a provider with ``refund_lookup``: the
reconciliation job (or ``POST /v1/refunds/{id}/sync``) asks the sandbox whether it made the refund
once its request gave up ten minutes ago, and records what it found, or that it made none."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from billplane_sandbox.payment_methods import REFUND_ANSWER_LOST, SUCCEEDS

from billplane.plugins import RefundRequest, RefundResult
from billplane.provider_accounts.models import ProviderAccount
from billplane.provider_accounts.repository import ProviderAccountRepository
from billplane.runtime import Runtime
from tests.platform.dunning.held import use
from tests.platform.dunning.held_refunds import (
    ANOTHER_REFUND,
    events_of,
    made_ago,
    refund_host,
    refund_row,
    refunded_amount,
    sandbox_refund_id,
    waiting_refund,
)
from tests.platform.dunning.helpers import Client, execute, one
from tests.platform.dunning.stuck import reconciliation
from tests.platform.invoices.helpers import SANDBOX_KEY

FIVE_DAYS = 5 * 24 * 60 + 1  # minutes: past BILLPLANE_PAYMENT_PENDING_FLAG_HOURS' default
FAILURE = "SELECT failure_code, failure_message FROM refunds WHERE id = :id"


@pytest.mark.parametrize(
    ("method", "lose_answer"),
    [(REFUND_ANSWER_LOST, False), (SUCCEEDS, True)],  # found by the test method; found in the sandbox's ledger
)
async def test_a_refund_whose_answer_was_lost_is_found_at_the_provider_and_recorded(
    client: Client, admin_headers: dict[str, str], worker: Runtime, method: str, *, lose_answer: bool
) -> None:
    waiting = await waiting_refund(client, admin_headers, worker, method=method, lose_answer=lose_answer)
    assert (await refund_row(worker, waiting))["provider_refund_id"] is None  # its answer never came
    use(client, worker, refund_host(waiting))
    await made_ago(worker, waiting, minutes=9)
    await reconciliation(worker).run()
    assert waiting.looked_up == []  # a request in flight may still land
    assert (await refund_row(worker, waiting))["status"] == "pending"

    await made_ago(worker, waiting, minutes=11)
    report = await reconciliation(worker).run()

    refund = await refund_row(worker, waiting)
    assert waiting.looked_up == [waiting.refund]
    assert (refund["status"], refund["action_required"]) == ("succeeded", None)
    assert refund["provider_refund_id"].startswith("sbx_re_")
    assert await refunded_amount(worker, waiting) == 400
    assert report.refunds.settled == 1
    assert await events_of(worker, waiting) == ["refund.created", "refund.succeeded"]


async def test_a_refund_the_provider_never_made_fails_and_gives_its_amount_back(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    waiting = await waiting_refund(client, admin_headers, worker, unanswered=True)
    use(client, worker, refund_host(waiting))
    await made_ago(worker, waiting, minutes=11)

    await reconciliation(worker).run()

    refund = await refund_row(worker, waiting)
    assert (refund["status"], refund["provider_refund_id"], refund["action_required"]) == ("failed", None, None)
    failure = await one(worker, waiting.setup.tenant, FAILURE, id=waiting.refund)
    assert failure["failure_code"] == "provider_unreachable"
    assert "never made" in failure["failure_message"]
    assert await refunded_amount(worker, waiting) == 0
    again = await client.post(
        "/v1/refunds", json={"payment_id": waiting.payment, "amount": 400}, headers=waiting.setup.tenant.headers
    )
    assert again.status_code == 201, again.text  # the tenant can refund the amount again


async def test_a_provider_that_cannot_answer_is_asked_each_run_then_the_refund_is_shown_after_five_days(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    waiting = await waiting_refund(client, admin_headers, worker, unanswered=True)
    use(client, worker, refund_host(waiting, down=True))
    await made_ago(worker, waiting, minutes=11)
    await reconciliation(worker).run()
    await reconciliation(worker).run()
    refund = await refund_row(worker, waiting)
    assert (refund["status"], refund["action_required"]) == ("pending", None)
    assert waiting.looked_up == [waiting.refund] * 2

    await made_ago(worker, waiting, minutes=FIVE_DAYS)
    await reconciliation(worker).run()

    shown = (await refund_row(worker, waiting))["action_required"]
    assert "could not be asked whether it was made (sandbox could not be asked: connection refused)" in shown
    assert await refunded_amount(worker, waiting) == 400  # still reserved: it may have been refunded
    assert await events_of(worker, waiting) == ["refund.created", "refund.action_required"]


@pytest.mark.parametrize(("unlike", "why"), ANOTHER_REFUND)
async def test_a_refund_found_that_says_it_is_another_is_shown_to_the_tenant(
    client: Client, admin_headers: dict[str, str], worker: Runtime, unlike: dict[str, Any], why: str
) -> None:
    waiting = await waiting_refund(client, admin_headers, worker, unanswered=True)

    def another(_request: RefundRequest) -> RefundResult:
        return RefundResult(provider_refund_id="sbx_re_x", status="succeeded", **unlike)

    use(client, worker, refund_host(waiting, found=another))
    await made_ago(worker, waiting, minutes=11)
    await reconciliation(worker).run()

    refund = await refund_row(worker, waiting)
    assert (refund["status"], refund["provider_refund_id"]) == ("pending", None)
    assert why in refund["action_required"]
    assert await refunded_amount(worker, waiting) == 400


async def test_a_found_refund_its_webhook_recorded_first_is_counted_once(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    waiting = await waiting_refund(client, admin_headers, worker, unanswered=True)
    seen = sandbox_refund_id(waiting, "seen")
    # The provider's webhook, not naming billplane's refund, recorded the same refund as its own,
    # which counts its 400 on the payment next to this one's reservation.
    await execute(
        worker, waiting.setup.tenant,
        "INSERT INTO refunds (payment_id, amount, currency, status, provider_refund_id) "
        "VALUES (:payment, 400, 'USD', 'succeeded', :seen)", payment=waiting.payment, seen=seen,
    )  # fmt: skip
    await execute(
        worker, waiting.setup.tenant, "UPDATE payments SET refunded_amount = 800 WHERE id = :id", id=waiting.payment
    )

    def recorded(_request: RefundRequest) -> RefundResult:
        return RefundResult(provider_refund_id=seen, status="succeeded", amount=400, currency="USD")

    use(client, worker, refund_host(waiting, found=recorded))
    await made_ago(worker, waiting, minutes=11)
    await reconciliation(worker).run()

    refund = await refund_row(worker, waiting)
    assert (refund["status"], refund["provider_refund_id"]) == ("failed", None)
    assert (await one(worker, waiting.setup.tenant, FAILURE, id=waiting.refund))["failure_code"] == "duplicate"
    assert await refunded_amount(worker, waiting) == 400  # counted once: the other's


async def test_sync_looks_up_a_refund_never_confirmed_once_its_request_gave_up_long_enough_ago(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    waiting = await waiting_refund(client, admin_headers, worker, method=REFUND_ANSWER_LOST)
    url, headers = f"/v1/refunds/{waiting.refund}/sync", waiting.setup.tenant.headers
    use(client, worker, refund_host(waiting, lookup=False))
    await made_ago(worker, waiting, minutes=11)
    cannot = await client.post(url, headers=headers)
    assert (cannot.status_code, cannot.json()["errors"][0]["field"]) == (422, "refund_id"), cannot.text
    assert "no refund_lookup capability" in cannot.json()["errors"][0]["message"]

    use(client, worker, refund_host(waiting))
    await made_ago(worker, waiting, minutes=9)
    early = await client.post(url, headers=headers)
    assert early.status_code == 409, early.text
    assert "ask again after" in early.json()["detail"]
    assert waiting.looked_up == []

    await made_ago(worker, waiting, minutes=11)
    synced = await client.post(url, headers=headers)
    assert synced.status_code == 200, synced.text
    assert (synced.json()["status"], synced.json()["provider_refund_id"][:7]) == ("succeeded", "sbx_re_")
    assert waiting.looked_up == [waiting.refund]
    assert await refunded_amount(worker, waiting) == 400
    done = await client.post(url, headers=headers)
    assert done.status_code == 409, done.text  # settled: nothing to ask


async def test_sync_answers_503_when_the_provider_cannot_be_reached_and_changes_nothing(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    waiting = await waiting_refund(client, admin_headers, worker, unanswered=True)
    use(client, worker, refund_host(waiting, down=True))
    await made_ago(worker, waiting, minutes=11)
    before = (await refund_row(worker, waiting), await events_of(worker, waiting))

    down = await client.post(f"/v1/refunds/{waiting.refund}/sync", headers=waiting.setup.tenant.headers)

    assert down.status_code == 503, down.text
    assert (await refund_row(worker, waiting), await events_of(worker, waiting)) == before


async def test_sync_answers_502_when_the_plugin_fails_on_its_own_and_changes_nothing(
    client: Client, admin_headers: dict[str, str], worker: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    waiting = await waiting_refund(client, admin_headers, worker, unanswered=True)

    def broken(_request: RefundRequest) -> RefundResult:
        raise KeyError(f"a bug of the plugin, which put its key {SANDBOX_KEY} in its error")

    use(client, worker, refund_host(waiting, found=broken))
    await made_ago(worker, waiting, minutes=11)
    before = (await refund_row(worker, waiting), await events_of(worker, waiting))

    with caplog.at_level(logging.ERROR, logger="billplane.payments"):
        failed = await client.post(f"/v1/refunds/{waiting.refund}/sync", headers=waiting.setup.tenant.headers)

    assert failed.status_code == 502, failed.text
    assert failed.headers["content-type"].startswith("application/problem+json")
    assert (failed.json()["code"], failed.json()["status"]) == ("bad_gateway", 502)
    assert "a bug of the plugin" not in failed.text  # the client learns nothing of the exception
    assert waiting.looked_up == [waiting.refund]
    assert (await refund_row(worker, waiting), await events_of(worker, waiting)) == before
    assert await refunded_amount(worker, waiting) == 400
    [logged] = [record for record in caplog.records if record.name == "billplane.payments"]
    assert "a bug of the plugin" in caplog.text
    assert logged.exc_text is not None
    assert SANDBOX_KEY not in caplog.text
    assert "[redacted]" in caplog.text


@pytest.mark.parametrize(("status", "reserved"), [("failed", 0), ("pending", 400)])
async def test_a_refund_found_failed_or_pending_is_recorded_as_the_refund_call_would_have(
    client: Client, admin_headers: dict[str, str], worker: Runtime, status: str, reserved: int
) -> None:
    waiting = await waiting_refund(client, admin_headers, worker, unanswered=True)

    def made(_request: RefundRequest) -> RefundResult:
        message = "the card was closed" if status == "failed" else None
        return RefundResult(provider_refund_id="sbx_re_found", status=status, failure_message=message)  # type: ignore[arg-type]

    use(client, worker, refund_host(waiting, found=made))
    await made_ago(worker, waiting, minutes=11)
    await reconciliation(worker).run()

    refund = await refund_row(worker, waiting)
    assert (refund["status"], refund["provider_refund_id"], refund["action_required"]) == (
        status,
        "sbx_re_found",
        None,
    )
    assert await refunded_amount(worker, waiting) == reserved
    if status == "failed":
        assert (await one(worker, waiting.setup.tenant, FAILURE, id=waiting.refund))["failure_message"] == (
            "the card was closed"
        )


async def test_a_lost_refund_whose_account_is_gone_is_shown_at_once(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    waiting = await waiting_refund(client, admin_headers, worker, unanswered=True)
    use(client, worker, refund_host(waiting))
    async with worker.database.control_session() as session:  # as DELETE leaves it, past its checks
        account = await session.get(ProviderAccount, waiting.setup.account)
        assert account is not None
        await ProviderAccountRepository(session, waiting.setup.tenant.id).mark_deleted(account)
    await made_ago(worker, waiting, minutes=11)

    await reconciliation(worker).run()

    refund = await refund_row(worker, waiting)
    assert (refund["status"], waiting.looked_up) == ("pending", [])
    assert "was deleted" in refund["action_required"]
    assert await refunded_amount(worker, waiting) == 400


async def test_a_provider_that_refuses_to_answer_shows_the_refund_at_once(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    waiting = await waiting_refund(client, admin_headers, worker, unanswered=True)
    use(client, worker, refund_host(waiting, refuses=True))
    await made_ago(worker, waiting, minutes=11)

    report = await reconciliation(worker).run()

    refund = await refund_row(worker, waiting)
    assert refund["status"] == "pending"
    assert "refused to say whether it made it (Invalid API Key provided)" in refund["action_required"]
    assert (report.refunds.action_required, report.refunds.unanswered) == (1, 0)
    assert await refunded_amount(worker, waiting) == 400
