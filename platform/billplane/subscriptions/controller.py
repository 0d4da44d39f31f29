"""/v1/subscriptions (read-only: the billing engine writes them)"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.api.pagination import DEFAULT_LIMIT, Cursor, Limit, Page, decode_cursor
from billplane.db.mixins import MAX_ID
from billplane.subscriptions.models import SUBSCRIPTION_STATUSES
from billplane.subscriptions.repository import SubscriptionFilters, SubscriptionRepository
from billplane.subscriptions.schemas import Subscription
from billplane.subscriptions.service import SubscriptionService
from billplane.sync.dependencies import sync_service_for
from billplane_tenants import KeyPrincipal


async def provide_subscription_service(
    request: Request[Any, Any, Any],
    tenant_session: NamedDependency[AsyncSession],
    principal: NamedDependency[KeyPrincipal],
) -> SubscriptionService:
    sync = sync_service_for(request, tenant_session, principal)
    return SubscriptionService(SubscriptionRepository(session=tenant_session), sync)


class SubscriptionController(Controller):
    path = "/v1/subscriptions"
    tags = ["subscriptions"]
    security = [{"apiKey": []}]
    dependencies = {"subscriptions": Provide(provide_subscription_service)}

    @get("/{subscription_id:int}", operation_id="getSubscription")
    async def get_subscription(
        self, subscription_id: FromPath[int], subscriptions: NamedDependency[SubscriptionService]
    ) -> Subscription:
        """One subscription by id; 404 if it does not exist or belongs to another tenant."""
        return Subscription.of(await subscriptions.get(subscription_id))

    @post("/{subscription_id:int}/sync", operation_id="syncSubscription", status_code=202)
    async def sync_subscription(
        self, subscription_id: FromPath[int], subscriptions: NamedDependency[SubscriptionService]
    ) -> Subscription:
        """Mirror the subscription to its provider account again, now.

        Creates it at its account (or the tenant's default account) if it is not there yet,
        retries failed provider work with new idempotency keys and skips the backoff of waiting
        work. Answers at once (202) with the subscription; watch `sync_status`.
        """
        return Subscription.of(await subscriptions.sync(subscription_id))

    @get("/", operation_id="listSubscriptions")
    async def list_subscriptions(
        self,
        *,
        subscriptions: NamedDependency[SubscriptionService],
        customer_id: Annotated[int | None, QueryParameter(ge=1, le=MAX_ID, description="This customer's only.")] = None,
        plan_id: Annotated[int | None, QueryParameter(ge=1, le=MAX_ID, description="On this plan only.")] = None,
        status: Annotated[
            str | None, QueryParameter(enum=SUBSCRIPTION_STATUSES, description="In this state only.")
        ] = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Page[Subscription]:
        """List subscriptions, oldest first, filtered by customer, plan or status."""
        filters = SubscriptionFilters(customer_id, plan_id, status)
        rows, next_cursor = await subscriptions.page(filters, after=decode_cursor(cursor), limit=limit)
        return Page(data=[Subscription.of(row) for row in rows], next_cursor=next_cursor)
