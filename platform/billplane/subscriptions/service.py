"""Subscription reads and provider sync. Never commits: the request owns the transaction.

Subscriptions are written by the billing engine; the tenant API only reads them for now, and can
ask for one to be mirrored to its provider again.
"""

from __future__ import annotations

from litestar.exceptions import NotFoundException

from billplane.api.pagination import page_of
from billplane.api.problems import InvalidFieldError
from billplane.subscriptions.models import SUBSCRIPTION_STATUSES, Subscription
from billplane.subscriptions.repository import SubscriptionFilters, SubscriptionRepository
from billplane.sync.service import SyncService


class SubscriptionService:
    def __init__(self, repository: SubscriptionRepository, sync: SyncService | None = None) -> None:
        self.repository = repository
        self.sync_service = sync

    async def get(self, subscription_id: int) -> Subscription:
        subscription = await self.repository.find(subscription_id)
        if subscription is None:  # another tenant's id looks exactly like an id that never existed
            raise NotFoundException(f"no subscription {subscription_id}")
        return subscription

    async def sync(self, subscription_id: int) -> Subscription:
        """Mirror the subscription to its provider account (or the tenant's default one) again, now."""
        subscription = await self.get(subscription_id)
        if self.sync_service is not None:
            await self.sync_service.sync_subscription(subscription)
        return await self.repository.update(subscription)

    async def page(
        self, filters: SubscriptionFilters, *, after: int | None, limit: int
    ) -> tuple[list[Subscription], str | None]:
        if filters.status is not None and filters.status not in SUBSCRIPTION_STATUSES:
            raise InvalidFieldError("status", f"must be one of {', '.join(SUBSCRIPTION_STATUSES)}", source="query")
        rows = await self.repository.page_matching(filters, after=after, limit=limit)
        return page_of(rows, limit)
