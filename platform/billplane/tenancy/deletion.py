"""What deleting a tenant would leave behind at its providers, refused while it holds money.

Deleting a tenant drops its schema: billplane then forgets every subscription a provider bills on
its behalf (Stripe, PayPal), which go on charging customers, and every payment or refund still
pending, which nothing could settle any more (their webhooks find no account). Deleting one
provider account is refused on rules of the same kind (``provider_accounts.service``), stricter
for subscriptions (any live one uses the account, the sandbox's included): a whole tenant leaving
takes its subscriptions billed here with it, and only the provider's billing outlives it.

The question is asked in the deletion's own transaction, once nothing can change its answer
before the schema goes (``money_left``). Asked before, from another transaction, a payment
committed between the answer and the drop was dropped with the schema, its charge in flight at
the provider.
"""

from __future__ import annotations

from sqlalchemy import exists, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.payments.models import Payment, Refund
from billplane.plugins.host import PluginHost
from billplane.subscriptions.models import LIVE_STATUSES, Subscription
from billplane.sync.unsent import UNSENT_CHANGES, unsent_subscription_changes
from billplane_tenants import Tenant

_SEARCH_PATH = text("SELECT set_config('search_path', :schema, true)")


async def money_left(session: AsyncSession, plugins: PluginHost, tenant: Tenant) -> str | None:
    """Why ``tenant`` cannot be deleted now, or None; asked in the deletion's transaction
    (``session``), which holds the answer true until the schema is dropped or the deletion refused:
    the tenant's row locked first (queued work takes it before any of the tenant's tables, so it
    waits), then its subscriptions, payments and refunds locked whole (ACCESS EXCLUSIVE, as the
    drop locks them: it waits for the transactions using them to end, and no write comes after)."""
    await session.execute(select(Tenant.id).where(Tenant.id == tenant.id).with_for_update())
    # Its tables by name, here only: control tables name their schema (``billplane_tenants.control``).
    await session.execute(_SEARCH_PATH, {"schema": tenant.schema_name})
    await session.execute(text("LOCK TABLE subscriptions, payments, refunds IN ACCESS EXCLUSIVE MODE"))
    billing = plugins.billers()
    billed = select(func.count()).where(Subscription.provider.in_(billing), Subscription.status.in_(LIVE_STATUSES))
    payments = select(Payment.id).where(Payment.status == "pending")
    refunds = select(Refund.id).where(Refund.status == "pending")
    subscriptions = int(await session.scalar(billed) or 0)
    in_flight = bool(await session.scalar(select(exists(payments) | exists(refunds))))
    reasons = []
    if subscriptions:
        reasons.append(f"{subscriptions} live subscriptions are billed by their provider: cancel them first")
    if await session.scalar(select(exists(unsent_subscription_changes()))):
        reasons.append(UNSENT_CHANGES)
    if in_flight:
        reasons.append("payments or refunds are still pending: let them settle, or resolve them")
    return "; ".join(reasons) or None
