"""Outbox operations that mirror catalog edits to the accounts that have the product or plan:
``product.update`` (name, description, archived) and ``plan.update`` (archived or active again).

Like ``customer.update``, each sends the state as it is when the row runs, so rows that queue up
converge on the latest edit. Only adapters with the ``catalog_updates`` capability get these rows
(``SyncService.product_changed``, ``.plan_changed``).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.catalog.models import Plan, Product
from billplane.plugins.contract import CatalogUpdateAdapter
from billplane.plugins.errors import UnsupportedOperationError
from billplane.subscriptions.models import Subscription
from billplane.sync.attempt import Attempt, NotReadyError
from billplane.sync.catalog_edits import product_data
from billplane.sync.models import OutboxEntry
from billplane.sync.operations import Operation
from billplane.sync.provider_plans import price_at, provider_products

# Rows that send a subscription's price to the provider: a create, and a change (to this plan).
_SENDING_PRICE = ("subscription.create", "subscription.update", "subscription.update_unprorated")


def _adapter(attempt: Attempt) -> CatalogUpdateAdapter:
    adapter = attempt.account.adapter
    if not isinstance(adapter, CatalogUpdateAdapter):  # such an account gets no row (product_changed)
        raise UnsupportedOperationError("catalog updates", f"{attempt.account.provider} mirrors no catalog edit")
    return adapter


async def _skip(attempt: Attempt) -> None:
    async with attempt.finish(called=False):
        return


async def update_product(attempt: Attempt) -> None:
    async with attempt.read() as session:
        product = await session.get(Product, attempt.row.object_id)
        provider_ids = await provider_products(session, attempt.row.object_id, attempt.account.id)
    if product is None or not provider_ids:  # deleted, or never made at this account
        return await _skip(attempt)
    adapter, data = _adapter(attempt), product_data(product)
    for index, provider_id in enumerate(provider_ids):
        key = attempt.key() if index == 0 else attempt.key(f"product-{index}")
        await adapter.update_product(provider_id, data, idempotency_key=key)
    async with attempt.finish():
        pass
    return None


async def _price_in_use(session: AsyncSession, plan_id: int, account_id: int) -> bool:
    """Whether a subscription on the plan waits for its create or change to reach the account:
    sent after the price was archived there, the provider would refuse it (Stripe takes only
    active prices for new items)."""
    query = (
        select(OutboxEntry.id)
        .join(Subscription, Subscription.id == OutboxEntry.object_id)
        .where(
            OutboxEntry.kind.in_(_SENDING_PRICE),
            OutboxEntry.provider_account_id == account_id,
            OutboxEntry.status == "pending",
            Subscription.plan_id == plan_id,
        )
        .limit(1)
    )
    return (await session.execute(query)).first() is not None


async def update_plan(attempt: Attempt) -> None:
    async with attempt.read() as session:
        plan = await session.get(Plan, attempt.row.object_id)
        price = await price_at(session, attempt.row.object_id, attempt.account.id)
        busy = plan is not None and not plan.active and await _price_in_use(session, plan.id, attempt.account.id)
    if plan is None or price is None:
        return await _skip(attempt)
    if busy:
        raise NotReadyError("waiting for a subscription on the plan to reach the provider before its price is archived")
    await _adapter(attempt).set_price_active(price, active=plan.active, idempotency_key=attempt.key())
    async with attempt.finish():
        pass
    return None


OPERATIONS: dict[str, Operation] = {
    "product.update": update_product,
    "plan.update": update_plan,
}
