"""A provider's refund event that names no billplane refund (PayPal's ``PAYMENT.SALE.REFUNDED`` cannot)
settles billplane's one refund of that payment and amount that was sent and never answered, rather
than recording it again; a refund billplane never sent is not that one.

The PayPal flow is in ``tests/providers/paypal/test_platform_refunds.py``; these are the cases the
fake provider reaches more directly: a refund failed without the provider's word, one never sent.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from billplane.runtime import Runtime
from tests.conftest import CreatedTenant
from tests.platform.billing_seed import insert
from tests.platform.sync_fakes import StaticAccounts, drain
from tests.platform.test_provider_billing_events import rows
from tests.platform.test_webhooks import T0, Client, deliver, event, stored, tenant_with_subscription

REFUNDS = "SELECT provider_refund_id, status, failure_code, amount FROM refunds ORDER BY id"


async def _refund(runtime: Runtime, tenant: CreatedTenant, account: int, *, calls: int, **state: Any) -> int:
    """billplane's refund of 300 of payment pi_9 (1000 USD), in ``state``, whose ``refund.create``
    row gave up after ``calls`` calls without an answer (no provider id)."""
    async with runtime.database.tenant_session(tenant.schema) as session:
        customer = await session.scalar(text("SELECT id FROM customers"))
        payment = await insert(
            session, "payments", customer_id=customer, amount=1000, currency="USD", status="succeeded",
            provider="fake", provider_account_id=account, provider_payment_id="pi_9",
            refunded_amount=300 if state.get("status", "pending") == "pending" else 0,
        )  # fmt: skip
        refund = await insert(session, "refunds", payment_id=payment, amount=300, currency="USD", **state)
        await insert(
            session, "outbox", kind="refund.create", object_id=refund, provider_account_id=account,
            status="failed", attempts=3, calls=calls,
        )  # fmt: skip
        return refund


def _unnamed(status: str = "succeeded") -> dict[str, Any]:
    body = {"provider_refund_id": "re_9", "status": status, "provider_payment_id": "pi_9", "amount": 300}
    return {"refund": body | {"currency": "USD"}}


@pytest.mark.parametrize("code", ["resolved_by_tenant", "provider_unreachable"])
async def test_an_unnamed_refund_clears_the_one_sent_and_failed_without_the_providers_word(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime, code: str
) -> None:
    tenant, account, _ = await tenant_with_subscription(client, admin_headers, accounts, worker, 620)
    ours = await _refund(worker, tenant, account.id, calls=1, status="failed", failure_code=code)

    await deliver(client, account, [event("evt_1", "refund.updated", "re_9", T0, **_unnamed())])
    await drain(worker)

    # The money went back after all: counted again, once, on billplane's refund.
    assert await rows(worker, tenant, REFUNDS) == [
        {"provider_refund_id": "re_9", "status": "succeeded", "failure_code": None, "amount": 300}
    ]
    assert await rows(worker, tenant, "SELECT id FROM refunds") == [{"id": ours}]
    assert await rows(worker, tenant, "SELECT refunded_amount FROM payments") == [{"refunded_amount": 300}]


async def test_an_unnamed_failed_refund_settles_the_pending_one_sent_as_failed(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    tenant, account, _ = await tenant_with_subscription(client, admin_headers, accounts, worker, 621)
    await _refund(worker, tenant, account.id, calls=1, status="pending")

    await deliver(client, account, [event("evt_1", "refund.updated", "re_9", T0, **_unnamed("failed"))])
    await drain(worker)

    # The provider's failure is final: its amount goes back to the payment, to be refunded again.
    assert await rows(worker, tenant, REFUNDS) == [
        {"provider_refund_id": "re_9", "status": "failed", "failure_code": None, "amount": 300}
    ]
    assert await rows(worker, tenant, "SELECT refunded_amount FROM payments") == [{"refunded_amount": 0}]


async def test_a_refund_billplane_never_sent_is_not_the_one_an_unnamed_event_reports(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    """Its row made no call (the tenant's refund still queued, or given up before calling): the
    event's refund is another (made at the provider's dashboard), and is recorded as one."""
    tenant, account, _ = await tenant_with_subscription(client, admin_headers, accounts, worker, 622)
    await _refund(worker, tenant, account.id, calls=0, status="pending")

    await deliver(client, account, [event("evt_1", "refund.updated", "re_9", T0, **_unnamed())])
    await drain(worker)

    assert await rows(worker, tenant, REFUNDS) == [
        {"provider_refund_id": None, "status": "pending", "failure_code": None, "amount": 300},
        {"provider_refund_id": "re_9", "status": "succeeded", "failure_code": None, "amount": 300},
    ]
    assert await rows(worker, tenant, "SELECT refunded_amount FROM payments") == [{"refunded_amount": 600}]
    assert [row["status"] for row in await stored(worker, tenant)] == ["applied"]
