"""All SQL for products and plans."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import ColumnElement, exists, or_, select

from billplane.billing.models import InvoiceItem
from billplane.catalog.models import Plan, PricingTier, Product
from billplane.db.mixins import MAX_ID
from billplane.db.repository import TenantRepository
from billplane.invoices.models import InvoiceLine
from billplane.subscriptions.models import Subscription

# "share" keeps the row as read until the request ends (FOR SHARE); "update" also blocks new rows that
# reference it (FOR UPDATE conflicts with the key-share lock a foreign key check takes).
Lock = Literal["share", "update"] | None


@dataclass(frozen=True, slots=True)
class ProductFilters:
    active: bool | None = None


@dataclass(frozen=True, slots=True)
class PlanFilters:
    product_id: int | None = None
    active: bool | None = None


class ProductRepository(TenantRepository[Product]):
    model_type = Product

    async def find(self, row_id: int, *, lock: Lock = None) -> Product | None:
        if lock is None or not 1 <= row_id <= MAX_ID:
            return await super().find(row_id)
        query = select(Product).where(Product.id == row_id).with_for_update(read=lock == "share")
        return (await self.session.execute(query.execution_options(populate_existing=True))).scalar_one_or_none()

    async def page_filtered(self, filters: ProductFilters, *, after: int | None, limit: int) -> list[Product]:
        where: list[ColumnElement[bool]] = []
        if filters.active is not None:
            where.append(Product.active.is_(filters.active))
        return await self.page(*where, after=after, limit=limit)

    async def has_plans(self, product_id: int) -> bool:
        plans = select(Plan.id).where(Plan.product_id == product_id)
        return bool(await self.session.scalar(select(exists(plans))))

    async def remove(self, product: Product) -> None:
        await self.session.delete(product)
        await self.session.flush()


class PlanRepository(TenantRepository[Plan]):
    model_type = Plan

    async def find(self, row_id: int, *, lock: Lock = None) -> Plan | None:
        """The plan with its tiers and features (loaded by the relationships' selectin strategy)."""
        if lock is None or not 1 <= row_id <= MAX_ID:
            return await super().find(row_id)
        query = select(Plan).where(Plan.id == row_id).with_for_update(read=lock == "share")
        return (await self.session.execute(query.execution_options(populate_existing=True))).scalar_one_or_none()

    async def page_filtered(self, filters: PlanFilters, *, after: int | None, limit: int) -> list[Plan]:
        where: list[ColumnElement[bool]] = []
        if filters.product_id is not None:
            where.append(Plan.product_id == filters.product_id)
        if filters.active is not None:
            where.append(Plan.active.is_(filters.active))
        return await self.page(*where, after=after, limit=limit)

    async def has_subscriptions(self, plan_id: int) -> bool:
        """Any subscription, in any state, on the plan, moving to it at its period's end
        (``pending_plan_id``: billed at the plan's price from then on), or whose current period was
        billed at it (``billed_plan_id``: a later proration credits its unused time at that price)."""
        subscriptions = select(Subscription.id).where(
            or_(
                Subscription.plan_id == plan_id,
                Subscription.pending_plan_id == plan_id,
                Subscription.billed_plan_id == plan_id,
            )
        )
        return bool(await self.session.scalar(select(exists(subscriptions))))

    async def is_referenced(self, plan_id: int) -> bool:
        """Named by a subscription, an invoice line or an invoice item waiting for its invoice (whose
        line will name it): the plan row must stay."""
        lines = select(InvoiceLine.id).where(InvoiceLine.plan_id == plan_id)
        items = select(InvoiceItem.id).where(InvoiceItem.plan_id == plan_id)
        if await self.has_subscriptions(plan_id):
            return True
        return bool(await self.session.scalar(select(or_(exists(lines), exists(items)))))

    async def replace_tiers(self, plan: Plan, tiers: list[PricingTier]) -> None:
        plan.tiers.clear()
        # The unit of work inserts before it deletes; the old rows must go first (unique plan_id, position).
        await self.session.flush()
        plan.tiers.extend(tiers)

    async def remove(self, plan: Plan) -> None:
        """Delete the plan; its tiers and features go with it."""
        await self.session.delete(plan)
        await self.session.flush()
