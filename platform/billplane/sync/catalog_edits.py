"""What a provider shows of a product and a plan, and the edits an account missed while they were
being made there.

A catalog edit queues one row per account in ``provider_plans`` (``SyncService.product_changed``,
``.plan_changed``). An account whose product and price a subscription's job is making at that
moment is not there yet: the job reads the product before its calls and records the mapping after
them, so an edit that commits in between queues nothing for that account, and the account would
keep the state the job read. ``missed_edits`` closes that gap in the transaction that records the
mapping.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from billplane.catalog.models import Plan, Product
from billplane.plugins.contract import CatalogUpdateAdapter, ProductData
from billplane.sync.attempt import Attempt
from billplane.sync.models import OutboxEntry
from billplane.sync.repository import OutboxRepository

# What providers show of a product: its name (on the invoices and receipts Stripe sends), its
# description, and whether it is still sold. Its metadata stays billplane's.
MIRRORED_PRODUCT_FIELDS = frozenset({"name", "description", "active"})
# What they show of a plan: whether it takes new subscriptions. Its name and description reach no
# provider (billplane gives a Stripe price no nickname, and names a PayPal plan after its id), and
# its price cannot change once a subscription, so a provider, uses it.
MIRRORED_PLAN_FIELDS = frozenset({"active"})


def product_data(product: Product) -> ProductData:
    return ProductData(product_id=product.id, name=product.name, description=product.description, active=product.active)


async def missed_edits(
    session: AsyncSession, attempt: Attempt, plan_id: int, sent: ProductData | None
) -> list[OutboxEntry]:
    """Rows for the edits this account missed: of the product, when this attempt made it there from
    ``sent`` (None: the account had it already, and got every edit since), and of the plan, whose
    price ``ensure_price`` made active. Call it in the transaction that records the new mapping.

    Each row is locked (FOR SHARE) before it is read. An edit whose UPDATE came first is waited
    for, and then read here: its request looked for accounts before this mapping was committed.
    An edit that comes after waits for this transaction, and then finds the mapping and queues
    its own row: nothing is queued twice, and nothing is missed.
    """
    if not isinstance(attempt.account.adapter, CatalogUpdateAdapter):
        return []  # the provider mirrors no edit: it keeps what it was made with
    outbox = OutboxRepository(session)
    account = [attempt.account.id]
    queued: list[OutboxEntry] = []
    if sent is not None:
        product = await session.get(Product, sent.product_id, with_for_update={"read": True}, populate_existing=True)
        if product is not None and product_data(product) != sent:
            queued += await outbox.add("product.update", product.id, account)
            product.sync_status = "pending"
    plan = await session.get(Plan, plan_id, with_for_update={"read": True}, populate_existing=True)
    if plan is not None and not plan.active:  # archived since the subscription's job read it
        queued += await outbox.add("plan.update", plan.id, account)
        plan.sync_status = "pending"
    attempt.ring(session, queued)
    return queued
