"""Invoice items a tenant adds or removes by hand: a one-off charge or credit for a customer's
next invoice (a setup fee, a goodwill credit), as Stripe's pending invoice items.

An item names a subscription or only its customer. A subscription's item waits for that
subscription's next invoice; a customer's for the next invoice any of the customer's
subscriptions issues in its currency (the first invoice at creation, a billing run's, or
``invoice_now``'s), as the credits a subscription leaves when it ends (``customer_credit``).
Manual invoices take none. A pending item can be deleted; one an invoice took cannot.
"""

from __future__ import annotations

from litestar.exceptions import NotFoundException
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.api.problems import ConflictError, InvalidFieldError
from billplane.api.types import checked_currency
from billplane.billing.items_schemas import InvoiceItem as InvoiceItemView
from billplane.billing.items_schemas import InvoiceItemCreate
from billplane.billing.locked import TURNING
from billplane.billing.models import InvoiceItem
from billplane.customers.repository import CustomerRepository
from billplane.db.mixins import MAX_ID
from billplane.events.emit import emit
from billplane.subscriptions.repository import SubscriptionRepository
from billplane.sync.service import SyncService


class ItemService:
    def __init__(self, session: AsyncSession, sync: SyncService) -> None:
        self.session = session
        self.sync = sync

    async def create(self, data: InvoiceItemCreate) -> InvoiceItem:
        currency = checked_currency(data.currency)
        if data.amount == 0:
            raise InvalidFieldError("amount", "must not be 0: a charge is positive, a credit negative")
        if await CustomerRepository(session=self.session).get_live(data.customer_id, locked=True) is None:
            raise InvalidFieldError("customer_id", f"no customer {data.customer_id}")
        if data.subscription_id is not None:
            await self._check_subscription(data.subscription_id, data.customer_id, currency)
        else:
            billed = await SubscriptionRepository(session=self.session).billing_currencies(data.customer_id)
            if billed and currency not in billed:
                # A customer is billed in one currency at a time: its invoices would not take it.
                raise InvalidFieldError(
                    "currency", f"customer {data.customer_id} is billed in {', '.join(sorted(billed))}"
                )
        item = InvoiceItem(
            customer_id=data.customer_id,
            subscription_id=data.subscription_id,
            description=data.description,
            quantity=1,
            unit_amount=data.amount,
            amount=data.amount,
            currency=currency,
            proration=False,
        )
        self.session.add(item)
        return await self._emitted("invoice_item.created", item)

    async def _check_subscription(self, subscription_id: int, customer_id: int, currency: str) -> None:
        # Locked: a cancellation committing meanwhile would release the subscription's credits
        # before this item exists, and leave it on a subscription that issues no more invoices.
        subscriptions = SubscriptionRepository(session=self.session)
        subscription = await subscriptions.locked(subscription_id)
        if subscription is None or subscription.customer_id != customer_id:
            raise InvalidFieldError("subscription_id", f"customer {customer_id} has no subscription {subscription_id}")
        plan = await subscriptions.plan(subscription.plan_id)
        billed_in = None if plan is None else plan.currency
        if subscription.status not in TURNING:
            raise InvalidFieldError(
                "subscription_id",
                f"subscription {subscription_id} is {subscription.status}: it issues no more invoices",
            )
        if self.sync.bills_subscriptions(subscription.provider):
            raise InvalidFieldError(
                "subscription_id", f"{subscription.provider} bills subscription {subscription_id}: add items there"
            )
        if currency != billed_in:
            raise InvalidFieldError("currency", f"subscription {subscription_id} is billed in {billed_in}")

    async def delete(self, item_id: int) -> None:
        item = await self._locked(item_id)
        if item.invoice_id is not None:
            raise ConflictError(f"invoice item {item_id} is on invoice {item.invoice_id}: void or credit that instead")
        view = InvoiceItemView.of(item)
        await self.session.delete(item)
        await self.session.flush()
        await emit(self.session, "invoice_item.deleted", "invoice_item", item_id, view)

    async def _locked(self, item_id: int) -> InvoiceItem:
        # Locked: a billing run taking it at the same moment either commits first (then 409) or waits.
        item = None
        if 1 <= item_id <= MAX_ID:
            query = select(InvoiceItem).where(InvoiceItem.id == item_id).with_for_update()
            item = (await self.session.execute(query)).scalar_one_or_none()
        if item is None:
            raise NotFoundException(f"no invoice item {item_id}")
        return item

    async def _emitted(self, event: str, item: InvoiceItem) -> InvoiceItem:
        await self.session.flush()
        await self.session.refresh(item)  # created_at, set by the database
        await emit(self.session, event, "invoice_item", item.id, InvoiceItemView.of(item))
        return item
