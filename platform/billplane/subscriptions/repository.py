"""All SQL for subscriptions."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement

from billplane.db.repository import TenantRepository
from billplane.subscriptions.models import Subscription


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
