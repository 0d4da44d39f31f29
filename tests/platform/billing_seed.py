"""Billing rows written with SQL: subscriptions, invoices and payments have no create API yet.

`seed` gives a tenant the same small data set every time; the `their_*` factories give one tenant
an object no other tenant has, marked with its slug so a leak shows (see test_isolation.py).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.runtime import Runtime
from tests.conftest import CreatedTenant

Client = AsyncTestClient[Litestar]
RESOURCES = ("subscriptions", "invoices", "payments")
START, END = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 2, 1, tzinfo=UTC)


async def insert(session: AsyncSession, table: str, **values: object) -> int:
    """One row, returning its id; dict values go to jsonb columns."""
    names = ", ".join(values)
    params = ", ".join(
        f"CAST(:{name} AS jsonb)" if isinstance(value, dict) else f":{name}" for name, value in values.items()
    )
    binds = {name: json.dumps(value) if isinstance(value, dict) else value for name, value in values.items()}
    row_id = await session.scalar(text(f"INSERT INTO {table} ({names}) VALUES ({params}) RETURNING id"), binds)
    assert isinstance(row_id, int)
    return row_id


async def subscribed(session: AsyncSession, *, status: str = "active", **subscription: object) -> tuple[int, int]:
    """Ada, on a monthly flat plan of 10.00 USD (product "API", plan "Basic"), in ``status``, with
    the subscription's other columns from ``subscription``: (customer id, subscription id)."""
    customer = await insert(session, "customers", name="Ada")
    product = await insert(session, "products", name="API")
    plan = await insert(
        session, "plans", product_id=product, name="Basic", pricing_model="flat", amount=1000, currency="USD",
        billing_interval="month",
    )  # fmt: skip
    fields = {"customer_id": customer, "plan_id": plan, "status": status} | subscription
    return customer, await insert(session, "subscriptions", **fields)


async def tiered_plan(
    session: AsyncSession,
    product: int,
    name: str,
    tiers: list[tuple[int | None, Decimal | int]],
    flat_amount: int | None = None,
) -> int:
    """A daily graduated (``tiered``) USD plan with ``tiers`` of (up_to, unit amount), in order."""
    plan = await insert(
        session, "plans", product_id=product, name=name, pricing_model="tiered", currency="USD", billing_interval="day"
    )
    flat = {} if flat_amount is None else {"flat_amount": flat_amount}
    for position, (up_to, unit) in enumerate(tiers):
        await insert(session, "pricing_tiers", plan_id=plan, position=position, up_to=up_to, unit_amount=unit, **flat)
    return plan


async def invoice_line(session: AsyncSession, invoice: int, amount: int, unit: Decimal, **values: object) -> int:
    line = {"description": "Basic", "quantity": 1, "currency": "USD"} | values
    return await insert(session, "invoice_lines", invoice_id=invoice, amount=amount, unit_amount=unit, **line)


async def payment(session: AsyncSession, customer: int, status: str, amount: int, **values: object) -> int:
    return await insert(
        session, "payments", customer_id=customer, status=status, amount=amount, currency="USD", **values
    )


@dataclass(frozen=True)
class Billing:
    """One tenant's seed rows; subscriptions, invoices and payments keyed by their status."""

    ada: int
    bob: int
    flat: int
    tiered: int
    subscriptions: dict[str, int]
    invoices: dict[str, int]
    payments: dict[str, int]


async def seed(runtime: Runtime, tenant: CreatedTenant) -> Billing:
    """Two customers, two plans, and four subscriptions, invoices and payments, each in its own status."""
    async with runtime.database.tenant_session(tenant.schema) as s:
        ada, bob = await insert(s, "customers", name="Ada"), await insert(s, "customers", name="Bob")
        product = await insert(s, "products", name="API")
        plan = {"product_id": product, "currency": "USD", "billing_interval": "month"}
        flat = await insert(s, "plans", name="Basic", pricing_model="flat", amount=1000, **plan)
        tiered = await insert(s, "plans", name="Calls", pricing_model="tiered", **plan)
        subscribed = {
            "active": (ada, flat),
            "trialing": (ada, tiered),
            "canceled": (bob, flat),
            "past_due": (bob, tiered),
        }
        subs = {
            status: await insert(s, "subscriptions", customer_id=customer, plan_id=plan_id, status=status)
            for status, (customer, plan_id) in subscribed.items()
        }
        billed = {  # status: customer, subscription, number, total, amount_paid
            "paid": (ada, subs["active"], "INV-1", 1000, 1000),
            "open": (ada, subs["trialing"], "INV-2", 1450, 200),
            "void": (bob, subs["past_due"], "INV-3", 500, 0),
        }
        period = {"period_start": START, "period_end": END}
        invoices = {
            status: await insert(
                s,
                "invoices",
                customer_id=customer,
                subscription_id=sub,
                status=status,
                number=number,
                currency="USD",
                subtotal=total,
                total=total,
                amount_paid=paid,
                **period,
            )
            for status, (customer, sub, number, total, paid) in billed.items()
        }
        invoices["draft"] = await insert(s, "invoices", customer_id=bob, status="draft", currency="USD")
        await invoice_line(s, invoices["paid"], 1000, Decimal(1000), plan_id=flat, **period)
        metered = {"plan_id": tiered, "quantity": 10_000, "tier": 2, "description": "API calls 1001-11000"}
        await invoice_line(s, invoices["open"], 1250, Decimal("0.125"), **metered, **period)
        await invoice_line(s, invoices["open"], 200, Decimal(200), plan_id=flat, proration=True, description="Prorated")
        await invoice_line(s, invoices["void"], 500, Decimal(500))
        provider = {"provider": "sandbox", "provider_payment_id": "pay_1"}
        payments = {
            "succeeded": await payment(
                s, ada, "succeeded", 1000, invoice_id=invoices["paid"], refunded_amount=300, **provider
            ),
            "pending": await payment(s, ada, "pending", 200, invoice_id=invoices["open"]),
            "failed": await payment(s, bob, "failed", 500, failure_code="card_declined", failure_message="Declined."),
            "canceled": await payment(s, bob, "canceled", 500, invoice_id=invoices["void"]),
        }
        refund = {"payment_id": payments["succeeded"], "currency": "USD", "status": "succeeded"}
        await insert(s, "refunds", amount=100, reason="duplicate", **refund)
        await insert(s, "refunds", amount=200, provider_refund_id="re_2", **refund)
    return Billing(ada, bob, flat, tiered, subs, invoices, payments)


async def list_ids(client: Client, tenant: CreatedTenant, resource: str, **params: object) -> list[int]:
    """Every id the list gives for these filters, following `next_cursor` two rows at a time."""
    ids: list[int] = []
    cursor: str | None = None
    while True:
        query = {name: str(value) for name, value in params.items()} | {"limit": "2"}
        if cursor is not None:
            query["cursor"] = cursor
        response = await client.get(f"/v1/{resource}", params=query, headers=tenant.headers)
        assert response.status_code == 200, response.text
        ids += [row["id"] for row in response.json()["data"]]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return ids


@asynccontextmanager
async def _their_session(client: Client, theirs: CreatedTenant) -> AsyncIterator[AsyncSession]:
    """A transaction in ``theirs``'s schema, through a short-lived runtime on the test's own event loop.

    The app's runtime cannot serve here: its pooled connections belong to the test client's loop.
    """
    runtime = Runtime.from_settings(client.app.state.runtime.settings)
    try:
        async with runtime.database.tenant_session(theirs.schema) as session:
            yield session
    finally:
        await runtime.close()


async def their_subscription(client: Client, theirs: CreatedTenant) -> str:
    async with _their_session(client, theirs) as session:
        customer = await insert(session, "customers", name=theirs.slug)
        product = await insert(session, "products", name=theirs.slug)
        flat = {"pricing_model": "flat", "amount": 1000, "currency": "USD", "billing_interval": "month"}
        plan = await insert(session, "plans", product_id=product, name=theirs.slug, **flat)
        owner = {"owner": theirs.slug}
        return str(
            await insert(session, "subscriptions", customer_id=customer, plan_id=plan, status="active", metadata=owner)
        )


async def their_invoice(client: Client, theirs: CreatedTenant) -> str:
    async with _their_session(client, theirs) as session:
        customer = await insert(session, "customers", name=theirs.slug)
        invoice = await insert(session, "invoices", customer_id=customer, currency="USD", subtotal=100, total=100)
        await invoice_line(session, invoice, 100, Decimal(100), description=theirs.slug)
        return str(invoice)


async def their_invoice_item(client: Client, theirs: CreatedTenant) -> str:
    async with _their_session(client, theirs) as session:
        customer = await insert(session, "customers", name=theirs.slug)
        credit = {"quantity": 1, "unit_amount": Decimal(-100), "amount": -100, "currency": "USD"}
        return str(await insert(session, "invoice_items", customer_id=customer, description=theirs.slug, **credit))


async def their_payment(client: Client, theirs: CreatedTenant) -> str:
    async with _their_session(client, theirs) as session:
        customer = await insert(session, "customers", name=theirs.slug)
        paid = await payment(session, customer, "succeeded", 100, refunded_amount=50)
        await insert(
            session, "refunds", payment_id=paid, amount=50, currency="USD", status="succeeded", reason=theirs.slug
        )
        return str(paid)


async def their_payment_method(client: Client, theirs: CreatedTenant) -> str:
    async with _their_session(client, theirs) as session:
        customer = await insert(session, "customers", name=theirs.slug)
        method = await insert(
            session, "payment_methods", customer_id=customer, provider="sandbox", provider_account_id=1,
            provider_payment_method_id=f"pm_sandbox_succeeds.{theirs.slug}", is_default=True,
        )  # fmt: skip
        return str(method)


async def their_refund(client: Client, theirs: CreatedTenant) -> str:
    """A refund shown to its tenant as waiting for them: one another tenant could otherwise resolve."""
    async with _their_session(client, theirs) as session:
        customer = await insert(session, "customers", name=theirs.slug)
        paid = await payment(session, customer, "succeeded", 100, refunded_amount=50)
        refund = await insert(
            session, "refunds", payment_id=paid, amount=50, currency="USD", status="pending", reason=theirs.slug,
            action_required=theirs.slug,
        )  # fmt: skip
        return str(refund)


async def their_provider_event(client: Client, theirs: CreatedTenant) -> str:
    async with _their_session(client, theirs) as session:
        event = {"event_id": f"evt_{theirs.slug}", "type": "customer.updated", "provider_type": theirs.slug}
        row = await session.scalar(
            text(
                "INSERT INTO provider_events (provider, provider_account_id, event_id, type, provider_object_id,"
                " occurred_at, raw_body, event, status, detail) VALUES ('sandbox', 1, :event_id, 'customer.updated',"
                " :slug, now(), :body, CAST(:event AS jsonb), 'ignored', :slug) RETURNING id"
            ),
            {
                "event_id": f"evt_{theirs.slug}",
                "slug": theirs.slug,
                "body": theirs.slug.encode(),
                "event": json.dumps(event),
            },
        )
        return str(row)
