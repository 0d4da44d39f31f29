"""All SQL for subscriptions, and the reads that check a new or changed one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, exists, func, select

from billplane.billing.models import InvoiceItem
from billplane.catalog.models import Plan
from billplane.customers.models import Customer
from billplane.customers.repository import locked_live
from billplane.db.mixins import MAX_ID
from billplane.db.repository import TenantRepository
from billplane.invoices.models import Invoice
from billplane.payments.models import PaymentMethod
from billplane.pricing import LineDraft
from billplane.subscriptions.models import LIVE_STATUSES, Subscription, UsageRecord


@dataclass(frozen=True, slots=True)
class SubscriptionFilters:
    customer_id: int | None = None
    plan_id: int | None = None
    status: str | None = None


class SubscriptionRepository(TenantRepository[Subscription]):
    model_type = Subscription

    async def page_matching(self, filters: SubscriptionFilters, *, after: int | None, limit: int) -> list[Subscription]:
        where: list[ColumnElement[bool]] = []
        if filters.customer_id is not None:
            where.append(Subscription.customer_id == filters.customer_id)
        if filters.plan_id is not None:
            where.append(Subscription.plan_id == filters.plan_id)
        if filters.status is not None:
            where.append(Subscription.status == filters.status)
        return await self.page(*where, after=after, limit=limit)

    async def locked(self, subscription_id: int) -> Subscription | None:
        """The subscription, locked for this transaction: two changes of one subscription queue up.
        Read again after the wait, even when the session has it already (the preview read it
        first): a billing run may have moved it on meanwhile.

        Its customer's row is locked first (``locked_live``'s lock): a change may write the
        customer (its sync status), and requests that write for a customer lock it before the
        subscription (an invoice item for it). In the other order the two deadlocked."""
        if not 1 <= subscription_id <= MAX_ID:
            return None
        of_subscription = select(Subscription.customer_id).where(Subscription.id == subscription_id)
        await self.session.execute(
            locked_live(select(Customer).where(Customer.id == of_subscription.scalar_subquery()))
        )
        query = select(Subscription).where(Subscription.id == subscription_id).with_for_update()
        query = query.execution_options(populate_existing=True)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def live_customer(self, customer_id: int, *, locked: bool = False) -> Customer | None:
        """``locked``: for a create, which checks the customer first (``locked_live``)."""
        query = select(Customer).where(Customer.id == customer_id, Customer.deleted_at.is_(None))
        if locked:
            query = locked_live(query)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def plan(self, plan_id: int) -> Plan | None:
        return await self.session.get(Plan, plan_id)

    async def payment_method(self, payment_method_id: int, customer_id: int) -> PaymentMethod | None:
        query = select(PaymentMethod).where(
            PaymentMethod.id == payment_method_id,
            PaymentMethod.customer_id == customer_id,
            PaymentMethod.detached_at.is_(None),
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def billed_here(self, subscription_id: int) -> bool:
        """Whether billplane bills the subscription: it issued an invoice of it (not one mirrored
        from a provider), or holds usage reported for it (a metered plan is invoiced only at its
        period's end, from usage billplane keeps, which no provider was told of)."""
        issued = select(Invoice.id).where(
            Invoice.subscription_id == subscription_id, Invoice.provider_invoice_id.is_(None)
        )
        used = select(UsageRecord.id).where(UsageRecord.subscription_id == subscription_id)
        return bool(await self.session.scalar(select(exists(issued) | exists(used))))

    async def rest_billed_from(self, subscription_id: int, period_start: datetime) -> datetime | None:
        """When the current period (from ``period_start``) was billed from, if not from its start: a
        pause that spanned the start billed nothing then, and its resume the rest of the period
        (``subscription_update``, from the resume on: ``resume`` and the billing run's alike)."""
        query = select(func.max(Invoice.period_start)).where(
            Invoice.subscription_id == subscription_id,
            Invoice.billing_reason == "subscription_update",
            Invoice.provider_invoice_id.is_(None),
            Invoice.period_start > period_start,
        )
        found: datetime | None = await self.session.scalar(query)
        return found

    async def billing_currencies(self, customer_id: int, *, other_than: int | None = None) -> set[str]:
        """Currencies of the customer's live subscriptions (one customer is billed in one currency)."""
        query = (
            select(Plan.currency)
            .join(Subscription, Subscription.plan_id == Plan.id)
            .where(Subscription.customer_id == customer_id, Subscription.status.in_(LIVE_STATUSES))
            .distinct()
        )
        if other_than is not None:
            query = query.where(Subscription.id != other_than)
        return set((await self.session.execute(query)).scalars())

    def add_items(self, subscription: Subscription, lines: tuple[LineDraft, ...]) -> None:
        """Pending invoice items of the subscription, one per line (credits negative)."""
        self.session.add_all(
            InvoiceItem(
                customer_id=subscription.customer_id,
                subscription_id=subscription.id,
                plan_id=line.plan_id,
                description=line.description,
                quantity=line.quantity,
                unit_amount=line.unit_amount,
                amount=line.amount,
                currency=line.currency,
                period_start=line.period_start,
                period_end=line.period_end,
                proration=line.proration,
            )
            for line in lines
        )
