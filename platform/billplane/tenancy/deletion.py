"""What deleting a tenant would leave behind at its providers, refused while it holds money.

Deleting a tenant drops its schema: billplane then forgets every subscription a provider bills on
its behalf (Stripe, PayPal), which go on charging customers, and every payment or refund still
pending, which nothing could settle any more (their webhooks find no account). Deleting one
provider account is refused on rules of the same kind (``provider_accounts.service``), stricter
for subscriptions (any live one uses the account, the sandbox's included): a whole tenant leaving
takes its subscriptions billed here with it, and only the provider's billing outlives it.
"""

from __future__ import annotations

from sqlalchemy import exists, func, select

from billplane.payments.models import Payment, Refund
from billplane.runtime import Runtime
from billplane.subscriptions.models import LIVE_STATUSES, Subscription


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
