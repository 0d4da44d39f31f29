"""What deleting a tenant would leave behind at its providers, refused while it holds money.

Deleting a tenant drops its schema: billplane then forgets every subscription a provider bills on
its behalf (Stripe, PayPal), which go on charging customers, and every payment or refund still
pending, which nothing could settle any more (their webhooks find no account). Deleting one
provider account is refused on rules of the same kind (``provider_accounts.service``), stricter
for subscriptions (any live one uses the account, the sandbox's included): a whole tenant leaving
takes its subscriptions billed here with it, and only the provider's billing outlives it.

The question is asked once nothing can change its answer before the schema goes (``hold_money``):
the tenant's row locked first (queued work takes it before any of the tenant's tables, so it
waits), then its subscriptions, payments and refunds locked against writes (SHARE, which waits for
the requests writing them to end, and lets them read). Asked before, a payment committed between
the question and the drop was dropped with the schema, its charge in flight at the provider.
"""

from __future__ import annotations

from sqlalchemy import exists, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.payments.models import Payment, Refund
from billplane.runtime import Runtime
from billplane.subscriptions.models import LIVE_STATUSES, Subscription
from billplane_tenants import Tenant
from billplane_tenants.naming import quoted_schema


async def hold_money(session: AsyncSession, tenant: Tenant) -> None:
    """In the deletion's transaction: the tenant's row, then its tables of money, locked against
    writes until the schema is dropped (or the deletion refused), so that ``money_left`` stays true."""
    await session.execute(select(Tenant.id).where(Tenant.id == tenant.id).with_for_update())
    schema = quoted_schema(tenant.schema_name)
    tables = ", ".join(f"{schema}.{table}" for table in ("subscriptions", "payments", "refunds"))
    await session.execute(text(f"LOCK TABLE {tables} IN SHARE MODE"))


async def money_left(runtime: Runtime, schema: str) -> str | None:
    """Why the tenant of ``schema`` cannot be deleted now, or None."""
    billing = runtime.plugins.billers()
    billed = select(func.count()).where(Subscription.provider.in_(billing), Subscription.status.in_(LIVE_STATUSES))
    payments = select(Payment.id).where(Payment.status == "pending")
    refunds = select(Refund.id).where(Refund.status == "pending")
    async with runtime.database.tenant_session(schema) as session:
        subscriptions = int(await session.scalar(billed) or 0)
        in_flight = bool(await session.scalar(select(exists(payments) | exists(refunds))))
    reasons = []
    if subscriptions:
        reasons.append(f"{subscriptions} live subscriptions are billed by their provider: cancel them first")
    if in_flight:
        reasons.append("payments or refunds are still pending: let them settle, or resolve them")
    return "; ".join(reasons) or None
