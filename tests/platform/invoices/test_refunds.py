"""Refunds: reserved on the payment when created, sent to the sandbox by the worker, never more than paid."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest
from billplane_sandbox import payment_methods
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from billplane.runtime import Runtime
from tests.conftest import CreatedTenant, create_tenant
from tests.platform.invoices.helpers import Client, act, event_types, rows
from tests.platform.invoices.test_payments import open_invoice, payments_of
from tests.platform.sync_fakes import as_worker, drain


@pytest.fixture
async def worker(runtime: Runtime) -> Runtime:
    return await as_worker(runtime)


async def paid_payment(client: Client, runtime: Runtime, tenant: CreatedTenant, token: str, amount: int) -> int:
    _, invoice = await open_invoice(client, runtime, tenant, token, amount)
    assert (await act(client, tenant, invoice["id"], "pay")).status_code == 202
    await drain(runtime)
    [payment] = await payments_of(client, tenant, invoice["id"])
    payment_id: int = payment["id"]
    return payment_id


async def refund(client: Client, tenant: CreatedTenant, **body: Any) -> Any:
    return await client.post("/v1/refunds", json=body, headers=tenant.headers)


async def payment(client: Client, tenant: CreatedTenant, payment_id: int) -> dict[str, Any]:
    shown: dict[str, Any] = (await client.get(f"/v1/payments/{payment_id}", headers=tenant.headers)).json()
    return shown


async def test_refunds_up_to_what_was_paid(client: Client, admin_headers: dict[str, str], worker: Runtime) -> None:
    tenant = await create_tenant(client, admin_headers, "ref")
    paid = await paid_payment(client, worker, tenant, payment_methods.SUCCEEDS, 1000)

    above = await refund(client, tenant, payment_id=paid, amount=1001)
    assert (above.status_code, above.json()["errors"][0]["field"]) == (422, "amount")
    assert "at most 1000" in above.json()["errors"][0]["message"]

    part = await refund(client, tenant, payment_id=paid, amount=400, reason="requested_by_customer")
    assert part.status_code == 201, part.text
    assert (part.json()["status"], part.json()["amount"], part.json()["payment_id"]) == ("pending", 400, paid)
    # Reserved at once: a second refund cannot take what the first is refunding.
    assert (await payment(client, tenant, paid))["refunded_amount"] == 400
    too_much = await refund(client, tenant, payment_id=paid, amount=601)
    assert too_much.status_code == 422, too_much.text

    await drain(worker)
    [done] = (await payment(client, tenant, paid))["refunds"]
    assert (done["status"], done["reason"]) == ("succeeded", "requested_by_customer")
    assert done["provider_refund_id"].startswith("sbx_re_")

    rest = await refund(client, tenant, payment_id=paid)  # no amount: all that is left
    assert (rest.status_code, rest.json()["amount"]) == (201, 600)
    await drain(worker)
    shown = await payment(client, tenant, paid)
    assert (shown["refunded_amount"], [r["status"] for r in shown["refunds"]]) == (1000, ["succeeded", "succeeded"])
    nothing_left = await refund(client, tenant, payment_id=paid)
    assert nothing_left.status_code == 422, nothing_left.text
    assert await event_types(worker, tenant, "refund", done["id"]) == ["refund.created", "refund.succeeded"]

    # The database refuses refunding more than was paid, whatever the code does.
    with pytest.raises(IntegrityError):
        await rows(worker, tenant, "UPDATE payments SET refunded_amount = amount + 1 WHERE id = :id", id=paid)
    # And a second refund recording the same provider refund, which would count its money twice.
    with pytest.raises(IntegrityError):
        await rows(
            worker, tenant,
            "INSERT INTO refunds (payment_id, amount, currency, status, provider_refund_id) "
            "VALUES (:id, 1, 'USD', 'failed', :provider_refund_id) RETURNING id",
            id=paid, provider_refund_id=done["provider_refund_id"],
        )  # fmt: skip


async def test_refusals_write_nothing(client: Client, admin_headers: dict[str, str], worker: Runtime) -> None:
    tenant, other = await create_tenant(client, admin_headers, "ref"), await create_tenant(client, admin_headers, "ref")
    declined = await paid_payment(client, worker, tenant, payment_methods.DECLINED, 500)
    theirs = await paid_payment(client, worker, other, payment_methods.SUCCEEDS, 500)
    not_succeeded = await refund(client, tenant, payment_id=declined)
    assert not_succeeded.status_code == 409, not_succeeded.text
    unknown = await refund(client, tenant, payment_id=theirs + 1000)
    assert (unknown.status_code, unknown.json()["errors"][0]["field"]) == (422, "payment_id")
    if theirs != declined:  # their payment's id is not one of this tenant's
        crossing = await refund(client, tenant, payment_id=theirs)
        assert crossing.status_code == 422, crossing.text
    assert await rows(worker, tenant, "SELECT id FROM refunds") == []
    assert await rows(worker, tenant, "SELECT id FROM outbox WHERE kind = 'refund.create'") == []
    assert (await payment(client, other, theirs))["refunded_amount"] == 0


async def test_a_payment_whose_account_was_deleted_is_refused_a_refund_and_nothing_is_reserved(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers, "ref")
    paid = await paid_payment(client, worker, tenant, payment_methods.SUCCEEDS, 1000)
    [account] = await rows(worker, tenant, "SELECT provider_account_id FROM payments WHERE id = :id", id=paid)
    deleted = await client.delete(f"/v1/provider-accounts/{account['provider_account_id']}", headers=tenant.headers)
    assert deleted.status_code == 204, deleted.text

    refused = await refund(client, tenant, payment_id=paid, amount=300)
    assert refused.status_code == 409, refused.text
    assert "was deleted: refund it at the provider itself" in refused.json()["detail"]
    assert await rows(worker, tenant, "SELECT id FROM refunds") == []
    assert await rows(worker, tenant, "SELECT id FROM outbox WHERE kind = 'refund.create'") == []
    assert (await payment(client, tenant, paid))["refunded_amount"] == 0


async def test_a_refund_made_while_its_account_is_being_deleted_waits_for_the_deletion_and_is_refused(
    client: Client, admin_headers: dict[str, str], worker: Runtime, database_url: str
) -> None:
    tenant = await create_tenant(client, admin_headers, "ref")
    paid = await paid_payment(client, worker, tenant, payment_methods.SUCCEEDS, 1000)
    [account] = await rows(worker, tenant, "SELECT provider_account_id FROM payments WHERE id = :id", id=paid)
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    # The account's deletion under way, as DELETE /v1/provider-accounts/{id} makes it: the row
    # locked, then marked deleted, committed a moment later. A plain connection ended by a timer:
    # the refund's request, waiting in the app, blocks this test's loop.
    with psycopg.connect(dsn) as deletion:
        deletion.execute(
            "UPDATE control.provider_accounts SET status = 'deleted', deleted_at = now(), is_default = false, "
            "credentials_ciphertext = NULL, credentials_key_id = NULL WHERE id = %s",
            [account["provider_account_id"]],
        )
        committed = threading.Timer(1, deletion.commit)
        committed.start()
        refused = await refund(client, tenant, payment_id=paid, amount=300)
        committed.join()

    assert refused.status_code == 409, refused.text
    assert await rows(worker, tenant, "SELECT id FROM refunds") == []
    assert (await payment(client, tenant, paid))["refunded_amount"] == 0


async def test_a_refund_the_provider_refuses_fails_and_gives_its_amount_back(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers, "ref")
    # Pending at the sandbox, and going to fail there: the sandbox will refuse to refund it.
    pending = await paid_payment(client, worker, tenant, payment_methods.PENDING_FAILS, 700)
    # As if a (wrong) success had been recorded locally: billplane lets the refund be asked for.
    await rows(worker, tenant, "UPDATE payments SET status = 'succeeded' WHERE id = :id RETURNING id", id=pending)
    created = await refund(client, tenant, payment_id=pending, amount=300)
    assert created.status_code == 201, created.text
    assert (await payment(client, tenant, pending))["refunded_amount"] == 300
    await drain(worker)
    shown = await payment(client, tenant, pending)
    assert (shown["refunded_amount"], shown["refunds"][0]["status"]) == (0, "failed")
    assert await event_types(worker, tenant, "refund", created.json()["id"]) == ["refund.created", "refund.failed"]


@pytest.mark.parametrize(("hours", "sent"), [(19, True), (21, False)])
async def test_a_refund_that_may_have_been_made_is_not_sent_again_once_its_key_may_be_forgotten(
    client: Client, admin_headers: dict[str, str], worker: Runtime, *, hours: int, sent: bool
) -> None:
    tenant = await create_tenant(client, admin_headers, "ref")
    paid = await paid_payment(client, worker, tenant, payment_methods.SUCCEEDS, 700)
    created = await refund(client, tenant, payment_id=paid, amount=300)
    # A call that ended without an answer, long ago: the provider may have forgotten its key, and
    # the same key would then refund a second time.
    await rows(
        worker, tenant,
        "UPDATE outbox SET calls = 1, created_at = now() - make_interval(hours => :hours) "
        "WHERE kind = 'refund.create' RETURNING id",
        hours=hours,
    )  # fmt: skip
    await drain(worker)

    shown = await payment(client, tenant, paid)
    [row] = await rows(worker, tenant, "SELECT status, last_error FROM outbox WHERE kind = 'refund.create'")
    if sent:
        assert (shown["refunds"][0]["status"], row["status"]) == ("succeeded", "done")
        return
    # Still reserved, and pending until the provider's word settles it (or the tenant does).
    assert (shown["refunded_amount"], shown["refunds"][0]["status"]) == (300, "pending")
    assert shown["refunds"][0]["provider_refund_id"] is None
    assert row["status"] == "failed"
    assert "not sent again" in row["last_error"]
    assert await event_types(worker, tenant, "refund", created.json()["id"]) == ["refund.created"]


async def test_a_refusal_after_a_call_that_lost_its_answer_keeps_the_refund_pending(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers, "ref")
    pending = await paid_payment(client, worker, tenant, payment_methods.PENDING_FAILS, 700)
    await rows(worker, tenant, "UPDATE payments SET status = 'succeeded' WHERE id = :id RETURNING id", id=pending)
    created = await refund(client, tenant, payment_id=pending, amount=300)
    # An earlier call ended without an answer (a timeout, a worker that died during it): it may
    # have refunded, so the sandbox's refusal now does not say no money went back.
    await rows(worker, tenant, "UPDATE outbox SET calls = 1 WHERE kind = 'refund.create' RETURNING id")
    await drain(worker)

    shown = await payment(client, tenant, pending)
    # Still reserved: failing it would let the same amount be refunded a second time.
    assert (shown["refunded_amount"], shown["refunds"][0]["status"]) == (300, "pending")
    assert await rows(worker, tenant, "SELECT status, calls FROM outbox WHERE kind = 'refund.create'") == [
        {"status": "failed", "calls": 2}
    ]
    assert await event_types(worker, tenant, "refund", created.json()["id"]) == ["refund.created"]
