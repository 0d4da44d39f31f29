"""/v1/subscriptions"""

from __future__ import annotations

from typing import Annotated, Any, get_args

from litestar import Controller, Request, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.api.pagination import DEFAULT_LIMIT, Cursor, Limit, Page, decode_cursor
from billplane.db.mixins import MAX_ID
from billplane.subscriptions.models import SUBSCRIPTION_STATUSES
from billplane.subscriptions.preview import InvoicePreview
from billplane.subscriptions.repository import SubscriptionFilters
from billplane.subscriptions.schemas import (
    Subscription,
    SubscriptionCancel,
    SubscriptionCancelBody,
    SubscriptionCreateBody,
    SubscriptionPause,
    SubscriptionPauseBody,
    SubscriptionUpdateBody,
)
from billplane.subscriptions.service import SubscriptionService
from billplane.sync.dependencies import sync_service_for
from billplane_tenants import KeyPrincipal

# Bodies whose every field is optional may be left out (or null): the defaults, as for finalize and
# pay. The same example as the schema's body, on an optional body.
CancelBody = Annotated[SubscriptionCancel | None, get_args(SubscriptionCancelBody)[1]]
PauseBody = Annotated[SubscriptionPause | None, get_args(SubscriptionPauseBody)[1]]


async def provide_subscription_service(
    request: Request[Any, Any, Any],
    tenant_session: NamedDependency[AsyncSession],
    principal: NamedDependency[KeyPrincipal],
) -> SubscriptionService:
    sync = sync_service_for(request, tenant_session, principal)
    return SubscriptionService(tenant_session, sync)


class SubscriptionController(Controller):
    path = "/v1/subscriptions"
    tags = ["subscriptions"]
    security = [{"apiKey": []}]
    dependencies = {"subscriptions": Provide(provide_subscription_service)}

    @post("/", operation_id="createSubscription", status_code=201)
    async def create_subscription(
        self, data: SubscriptionCreateBody, subscriptions: NamedDependency[SubscriptionService]
    ) -> Subscription:
        """Subscribe a customer to a plan, with a quantity and an optional trial.

        `trialing` until the trial ends (the plan's `trial_period_days` unless given), else
        `active`, with its first period starting now (the customer's test clock's now, if it has
        one). Mirrored to `provider_account_id`, or the tenant's default account: watch
        `sync_status`, and `next_action` when the provider needs the customer's approval (PayPal).
        422 naming the field for a customer or plan that does not exist (or is another tenant's),
        an archived plan, a plan in another currency than the customer's live subscriptions, a
        pricing model the account's provider cannot bill, or a payment method not the customer's.
        """
        return Subscription.of(await subscriptions.create(data))

    @patch("/{subscription_id:int}", operation_id="updateSubscription")
    async def update_subscription(
        self,
        subscription_id: FromPath[int],
        data: SubscriptionUpdateBody,
        subscriptions: NamedDependency[SubscriptionService],
    ) -> Subscription:
        """Change plan or quantity, and how to prorate: `create_prorations` (default: from now,
        the rest of the period charged or credited), `none` (from now, no proration) or
        `at_period_end` (kept in `pending_plan_id`/`pending_quantity` until the period ends).

        Only trialing, active and past_due subscriptions change (409 otherwise). `metadata` is
        replaced whole, in any state.
        """
        return Subscription.of(await subscriptions.update(subscription_id, data))

    @post("/{subscription_id:int}/preview", operation_id="previewSubscriptionChange", status_code=200)
    async def preview_subscription_change(
        self,
        subscription_id: FromPath[int],
        data: SubscriptionUpdateBody,
        subscriptions: NamedDependency[SubscriptionService],
    ) -> InvoicePreview:
        """The invoice a change (the PATCH body) would produce, computed by the same pricing
        engine: the prorations billed now (credits negative) and the next period's invoice.
        Nothing is written; the same 409 and 422 as the change itself."""
        return await subscriptions.preview(subscription_id, data)

    @post("/{subscription_id:int}/cancel", operation_id="cancelSubscription", status_code=200)
    async def cancel_subscription(
        self,
        subscription_id: FromPath[int],
        subscriptions: NamedDependency[SubscriptionService],
        data: CancelBody = None,
    ) -> Subscription:
        """Cancel now (`canceled`), or at the end of the current period (`cancel_at_period_end`).

        Without a body: now, with nothing more invoiced. 409 for a subscription already canceled or expired.
        """
        return Subscription.of(await subscriptions.cancel(subscription_id, data or SubscriptionCancel()))

    @post("/{subscription_id:int}/undo-cancel", operation_id="undoSubscriptionCancel", status_code=200)
    async def undo_subscription_cancel(
        self, subscription_id: FromPath[int], subscriptions: NamedDependency[SubscriptionService]
    ) -> Subscription:
        """Take back a cancellation at the period's end (`cancel_at_period_end` back to false): the
        subscription renews as before. 409 when none is scheduled, for an ended subscription, and
        for a provider account that cannot take a cancellation back (PayPal)."""
        return Subscription.of(await subscriptions.undo_cancel(subscription_id))

    @post("/{subscription_id:int}/pause", operation_id="pauseSubscription", status_code=200)
    async def pause_subscription(
        self,
        subscription_id: FromPath[int],
        subscriptions: NamedDependency[SubscriptionService],
        data: PauseBody = None,
    ) -> Subscription:
        """Pause billing (`paused`), until `resume_at` or until resumed (without a body: until resumed).

        Trialing, active and past_due subscriptions pause (409 otherwise, and for a provider
        account that cannot pause).
        """
        return Subscription.of(await subscriptions.pause(subscription_id, data or SubscriptionPause()))

    @post("/{subscription_id:int}/resume", operation_id="resumeSubscription", status_code=200)
    async def resume_subscription(
        self, subscription_id: FromPath[int], subscriptions: NamedDependency[SubscriptionService]
    ) -> Subscription:
        """Resume a paused subscription: `trialing` if its trial has not ended, else `active`. 409 unless paused."""
        return Subscription.of(await subscriptions.resume(subscription_id))

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
