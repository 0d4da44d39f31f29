"""Valid first requests for the invoice, invoice item and payment POST routes, for test_idempotency_routes.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from billplane_sandbox import payment_methods
from billplane_sandbox.ids import make_id
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.runtime import Runtime
from tests.conftest import CreatedTenant
from tests.platform.billing_seed import insert, payment
from tests.platform.invoices.helpers import act, connect_sandbox, customer, draft

Client = AsyncTestClient[Litestar]
Sample = Callable[[Client, CreatedTenant], Awaitable[tuple[str, dict[str, Any]]]]


@asynccontextmanager
async def _session(client: Client, tenant: CreatedTenant) -> AsyncIterator[AsyncSession]:
    """A transaction through a short-lived runtime on the test's loop (the app's pool is on the client's)."""
    runtime = Runtime.from_settings(client.app.state.runtime.settings)
    try:
        async with runtime.database.tenant_session(tenant.schema) as session:
            yield session
    finally:
        await runtime.close()


async def _new_invoice(client: Client, tenant: CreatedTenant) -> tuple[str, dict[str, Any]]:
    ada = await customer(client, tenant)
    return "/v1/invoices", {"customer_id": ada, "currency": "USD", "lines": [{"description": "x", "unit_amount": 1}]}


async def _new_item(client: Client, tenant: CreatedTenant) -> tuple[str, dict[str, Any]]:
    ada = await customer(client, tenant)
    return "/v1/invoice-items", {"customer_id": ada, "amount": -250, "currency": "USD", "description": "Goodwill"}


async def _draft(client: Client, tenant: CreatedTenant) -> int:
    invoice_id: int = (await draft(client, tenant, await customer(client, tenant), 100))["id"]
    return invoice_id


async def _open(client: Client, tenant: CreatedTenant) -> int:
    invoice_id = await _draft(client, tenant)
    assert (await act(client, tenant, invoice_id, "finalize")).status_code == 200
    return invoice_id


async def _lines(client: Client, tenant: CreatedTenant) -> tuple[str, dict[str, Any]]:
    return f"/v1/invoices/{await _draft(client, tenant)}/lines", {"lines": [{"description": "y", "unit_amount": 2}]}


async def _finalize(client: Client, tenant: CreatedTenant) -> tuple[str, dict[str, Any]]:
    return f"/v1/invoices/{await _draft(client, tenant)}/finalize", {"days_until_due": 7}


def _on_open(action: str) -> Sample:
    async def sample(client: Client, tenant: CreatedTenant) -> tuple[str, dict[str, Any]]:
        return f"/v1/invoices/{await _open(client, tenant)}/{action}", {}

    return sample


async def _pay(client: Client, tenant: CreatedTenant) -> tuple[str, dict[str, Any]]:
    invoice_id = await _open(client, tenant)
    invoice = (await client.get(f"/v1/invoices/{invoice_id}", headers=tenant.headers)).json()
    account = await connect_sandbox(client, tenant)
    async with _session(client, tenant) as session:
        method = await insert(
            session, "payment_methods", customer_id=invoice["customer_id"], provider="sandbox",
            provider_account_id=account, provider_payment_method_id=payment_methods.SUCCEEDS,
        )  # fmt: skip
    return f"/v1/invoices/{invoice_id}/pay", {"payment_method_id": method}


async def _refund(client: Client, tenant: CreatedTenant) -> tuple[str, dict[str, Any]]:
    ada = await customer(client, tenant)
    account = await connect_sandbox(client, tenant)
    async with _session(client, tenant) as session:
        paid = await payment(
            session, ada, "succeeded", 500, provider="sandbox", provider_account_id=account,
            provider_payment_id="sbx_pay_idem",
        )  # fmt: skip
    return "/v1/refunds", {"payment_id": paid, "amount": 200}


async def _gave_up(client: Client, tenant: CreatedTenant, provider: str) -> int:
    """A pending payment at ``provider`` whose charge gave up an hour ago."""
    ada = await customer(client, tenant)
    account = await connect_sandbox(client, tenant)
    async with _session(client, tenant) as session:
        stuck = await payment(session, ada, "pending", 500, provider=provider, provider_account_id=account)
        await insert(
            session, "outbox", kind="payment.charge", object_id=stuck, provider_account_id=account, status="failed",
            attempts=8, last_error="gave up after 8 attempts",
        )  # fmt: skip
        await session.execute(text("UPDATE outbox SET done_at = now() - interval '1 hour'"))
    return stuck


async def _payment_sync(client: Client, tenant: CreatedTenant) -> tuple[str, dict[str, Any]]:
    """The charge never reached the sandbox: the sync fails the payment."""
    return f"/v1/payments/{await _gave_up(client, tenant, 'sandbox')}/sync", {}


async def _payment_resolve(client: Client, tenant: CreatedTenant) -> tuple[str, dict[str, Any]]:
    """PayPal cannot be asked about a charge: the tenant says none was made."""
    return f"/v1/payments/{await _gave_up(client, tenant, 'paypal')}/resolve", {"outcome": "failed"}


async def _refund_resolve(client: Client, tenant: CreatedTenant) -> tuple[str, dict[str, Any]]:
    """A refund billplane could not confirm, shown to the tenant: the tenant says none was made."""
    _, body = await _refund(client, tenant)
    async with _session(client, tenant) as session:
        await session.execute(text("UPDATE payments SET refunded_amount = 200"))
        shown = await insert(
            session, "refunds", payment_id=body["payment_id"], amount=200, currency="USD", status="pending",
            action_required="billplane could not confirm this refund",
        )  # fmt: skip
    return f"/v1/refunds/{shown}/resolve", {"outcome": "failed"}


async def _refund_sync(client: Client, tenant: CreatedTenant) -> tuple[str, dict[str, Any]]:
    """A refund the sandbox holds as pending: the sandbox says it succeeded."""
    _, body = await _refund(client, tenant)
    async with _session(client, tenant) as session:
        await session.execute(text("UPDATE payments SET refunded_amount = 200"))
        account = await session.scalar(text("SELECT provider_account_id FROM payments"))
        held = await insert(
            session, "refunds", payment_id=body["payment_id"], amount=200, currency="USD", status="pending",
            provider_refund_id=make_id(account, "re", "idem-sync"),
        )  # fmt: skip
    return f"/v1/refunds/{held}/sync", {}


async def _payment_method(client: Client, tenant: CreatedTenant) -> tuple[str, dict[str, Any]]:
    await connect_sandbox(client, tenant)
    ada = await customer(client, tenant)
    return f"/v1/customers/{ada}/payment-methods", {"token": payment_methods.SUCCEEDS}


INVOICE_SAMPLES: dict[str, Sample] = {
    "/v1/customers/{customer_id:int}/payment-methods": _payment_method,
    "/v1/invoices": _new_invoice,
    "/v1/invoice-items": _new_item,
    "/v1/invoices/{invoice_id:int}/lines": _lines,
    "/v1/invoices/{invoice_id:int}/finalize": _finalize,
    "/v1/invoices/{invoice_id:int}/pay": _pay,
    "/v1/invoices/{invoice_id:int}/void": _on_open("void"),
    "/v1/invoices/{invoice_id:int}/mark-uncollectible": _on_open("mark-uncollectible"),
    "/v1/refunds": _refund,
    "/v1/payments/{payment_id:int}/sync": _payment_sync,
    "/v1/payments/{payment_id:int}/resolve": _payment_resolve,
    "/v1/refunds/{refund_id:int}/resolve": _refund_resolve,
    "/v1/refunds/{refund_id:int}/sync": _refund_sync,
}
