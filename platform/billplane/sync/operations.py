"""What each outbox kind asks of the provider, and how its answer is recorded locally.

Each operation reads what it needs in a short transaction, calls the adapter outside any
transaction, and records the answer in ``attempt.finish()``. Preparatory calls (a subscription
needs its plan at the provider) use step keys derived from the same row and record their result
at once, so a retry resumes where the last attempt stopped.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.catalog.models import Plan, Product
from billplane.customers import provider_ids
from billplane.customers.models import Customer, ProviderCustomer
from billplane.customers.schemas import Customer as CustomerView
from billplane.plugins.contract import CustomerData, PriceData, SubscriptionData, TierData
from billplane.plugins.errors import ProviderError
from billplane.subscriptions.models import ENDED_STATUSES as ENDED
from billplane.subscriptions.models import Subscription
from billplane.subscriptions.schemas import Subscription as SubscriptionView
from billplane.sync.attempt import Attempt, NotReadyError
from billplane.sync.catalog_edits import missed_edits, product_data
from billplane.sync.models import OutboxEntry, ProviderPlan
from billplane.sync.repository import OutboxRepository
from billplane.webhooks import provider_state
from billplane.webhooks.object_events import customer_emitted, subscription_emitted

Operation = Callable[[Attempt], Awaitable[None]]


async def provider_customer_id(session: AsyncSession, customer_id: int, account_id: int) -> str | None:
    query = select(ProviderCustomer.provider_customer_id).where(
        ProviderCustomer.customer_id == customer_id, ProviderCustomer.provider_account_id == account_id
    )
    return (await session.execute(query)).scalar_one_or_none()


async def _record_customer(session: AsyncSession, attempt: Attempt, customer_id: int, provider_id: str) -> None:
    # Locked, as it is now: a change committed after a plain read would be missing from ``before``
    # and then counted as this answer's (an event of it, or the wrong one).
    customer = await session.get(Customer, customer_id, with_for_update=True, populate_existing=True)
    before = None if customer is None or customer.deleted_at is not None else CustomerView.of(customer)
    await provider_ids.record(session, customer_id, attempt.account.provider, attempt.account.id, provider_id)
    if customer is not None and before is not None:  # its new provider id shows in provider_ids
        await done_first(session, attempt)
        await customer_emitted(session, customer, before, ignoring=SYNC_FIELDS)


def _customer_data(customer: Customer) -> CustomerData:
    metadata = {str(key): str(value) for key, value in customer.metadata_.items()}
    return CustomerData(customer_id=customer.id, email=customer.email, name=customer.name, metadata=metadata)


async def ensure_customer(attempt: Attempt) -> None:
    async with attempt.read() as session:
        customer = await session.get(Customer, attempt.row.object_id)
        known = await provider_customer_id(session, attempt.row.object_id, attempt.account.id)
        if customer is None or customer.deleted_at is not None or known is not None:
            data = None
        else:  # an edit since the first attempt follows in its own customer.update row
            data = await attempt.pinned(session, "customer", _customer_data(customer))
    if customer is None or data is None:
        async with attempt.finish(called=False):
            return
    created = await attempt.account.adapter.ensure_customer(data, idempotency_key=attempt.key())
    async with attempt.finish() as session:
        await _record_customer(session, attempt, customer.id, created.provider_id)


async def update_customer(attempt: Attempt) -> None:
    async with attempt.read() as session:
        customer = await session.get(Customer, attempt.row.object_id)
        known = await provider_customer_id(session, attempt.row.object_id, attempt.account.id)
    # Not at the provider (its create failed or is superseded): a later create sends the current state.
    if customer is None or known is None:
        async with attempt.finish(called=False):
            return
    await attempt.account.adapter.update_customer(known, _customer_data(customer), idempotency_key=attempt.key())
    async with attempt.finish():
        pass


async def delete_customer(attempt: Attempt) -> None:
    async with attempt.read() as session:
        known = await provider_customer_id(session, attempt.row.object_id, attempt.account.id)
    if known is None:
        async with attempt.finish(called=False):
            return
    await attempt.account.adapter.delete_customer(known, idempotency_key=attempt.key())
    async with attempt.finish():
        pass


def _price_data(plan: Plan, provider_product_id: str) -> PriceData:
    tiers = [
        TierData(up_to=tier.up_to, unit_amount=Decimal(tier.unit_amount), flat_amount=tier.flat_amount)
        for tier in plan.tiers
    ]
    aggregation: Any = plan.usage_aggregation
    return PriceData(
        plan_id=plan.id,
        provider_product_id=provider_product_id,
        pricing_model=plan.pricing_model,  # type: ignore[arg-type]
        currency=plan.currency,
        billing_interval=plan.billing_interval,  # type: ignore[arg-type]
        interval_count=plan.interval_count,
        amount=plan.amount,
        tiers=tiers,
        package_size=plan.package_size,
        usage_aggregation=aggregation,
        trial_period_days=plan.trial_period_days,
    )


async def provider_price(attempt: Attempt, plan_id: int) -> str:
    """The plan's price id at the account, creating product and price there on first need."""
    account = attempt.account
    async with attempt.read() as session:
        mapped = await session.scalar(
            select(ProviderPlan).where(ProviderPlan.plan_id == plan_id, ProviderPlan.provider_account_id == account.id)
        )
        if mapped is not None:
            return mapped.provider_price_id
        plan = await session.get(Plan, plan_id)
        if plan is None:
            raise ProviderError(f"plan {plan_id} does not exist")
        product = await session.get(Product, plan.product_id)
        sibling = await session.scalar(
            select(ProviderPlan.provider_product_id)
            .join(Plan, Plan.id == ProviderPlan.plan_id)
            .where(Plan.product_id == plan.product_id, ProviderPlan.provider_account_id == account.id)
            .limit(1)
        )
        sent = None  # the product as this row makes it at the account (as its first attempt did)
        if sibling is None:
            assert product is not None  # plans.product_id is a foreign key  # noqa: S101
            sent = await attempt.pinned(session, f"product {product.id}", product_data(product))
    # Keys and pins per product and per plan: a retry of a subscription's change may need another
    # plan (so maybe another product) than its first attempt did, and must not get its objects.
    if sibling is None:
        assert sent is not None  # noqa: S101 - set with it above
        key = attempt.key(f"product-{sent.product_id}")
        sibling = (await account.adapter.ensure_product(sent, idempotency_key=key)).provider_id
    async with attempt.read() as session:  # the price as the first attempt sent it, product included
        wanted = await attempt.pinned(session, f"price {plan_id}", _price_data(plan, sibling))
    price = await account.adapter.ensure_price(wanted, idempotency_key=attempt.key(f"price-{plan_id}"))
    async with attempt.read() as session:
        values = {
            "plan_id": plan_id,
            "provider": account.provider,
            "provider_account_id": account.id,
            "provider_product_id": wanted.provider_product_id,
            "provider_price_id": price.provider_id,
        }
        statement = insert(ProviderPlan).values(values)
        statement = statement.on_conflict_do_nothing(index_elements=["plan_id", "provider_account_id"])
        if (await session.execute(statement.returning(ProviderPlan.id))).first() is not None:
            # Made from what was read before the calls: edits committed since went nowhere.
            await missed_edits(session, attempt, plan_id, sent)
        stored = await session.scalar(
            select(ProviderPlan.provider_price_id).where(
                ProviderPlan.plan_id == plan_id, ProviderPlan.provider_account_id == account.id
            )
        )
    return stored or price.provider_id


async def customer_waiting(session: AsyncSession, customer_id: int, account_id: int) -> bool:
    query = select(OutboxEntry.id).where(
        OutboxEntry.kind == "customer.ensure",
        OutboxEntry.object_id == customer_id,
        OutboxEntry.provider_account_id == account_id,
        OutboxEntry.status == "pending",
    )
    return (await session.execute(query.limit(1))).first() is not None


async def create_subscription(attempt: Attempt) -> None:
    async with attempt.read() as session:
        subscription = await session.get(Subscription, attempt.row.object_id)
        # Ended before it reached the provider (expired, canceled): nothing to create there.
        if subscription is None or subscription.provider_subscription_id is not None or subscription.status in ENDED:
            customer_id = None
        else:
            customer_id = subscription.customer_id
            # Waiting first, the mapping second: the customer's row is marked done in the same
            # commit that records its provider id, so a row seen not waiting any more has its id
            # visible to the next statement (read committed). The other order could see neither,
            # if that commit landed in between, and fail a subscription that only had to wait.
            waiting = await customer_waiting(session, customer_id, attempt.account.id)
            customer = await provider_customer_id(session, customer_id, attempt.account.id)
    if subscription is None or customer_id is None:
        async with attempt.finish(called=False):
            return
    if customer is None:
        if waiting:
            raise NotReadyError("waiting for the customer to be created at the provider")
        raise ProviderError("the customer is not at this provider account: sync the customer first")
    price = await provider_price(attempt, subscription.plan_id)
    data = SubscriptionData(
        subscription_id=subscription.id,
        provider_customer_id=customer,
        provider_price_id=price,
        quantity=subscription.quantity,
        trial_end=subscription.trial_end,
        metadata={str(key): str(value) for key, value in subscription.metadata_.items()},
    )
    async with attempt.read() as session:  # a change since the first attempt follows in its own row
        data = await attempt.pinned(session, "subscription", data)
    created = await attempt.account.adapter.create_subscription(data, idempotency_key=attempt.key())
    async with attempt.finish() as session:
        # Locked, as it is now (not as read before the call): the answer is recorded on, and its
        # event compared with, the row a concurrent change committed, never a stale copy of it.
        row = await session.get(Subscription, subscription.id, with_for_update=True, populate_existing=True)
        if row is not None:
            before = SubscriptionView.of(row)
            row.provider = attempt.account.provider
            row.provider_account_id = attempt.account.id
            row.provider_subscription_id = created.provider_id
            provider_state.record_created(row, created, provider_bills=attempt.account.bills_subscriptions)
            await done_first(session, attempt)
            # The provider's id, and what its answer says (incomplete with a next action, a trial it
            # set): the sync bookkeeping alone is no event.
            await subscription_emitted(session, row, before, ignoring=SYNC_FIELDS)


# Derived from the outbox rows: a change to them alone is no event of the object (docs/reference/event-types.md).
SYNC_FIELDS = ("sync_status", "last_sync_error", "synced_at")


async def done_first(session: AsyncSession, attempt: Attempt) -> None:
    """Mark the attempt's row done and derive its object's sync fields now, as ``attempt.finish``
    does when its block ends (both are idempotent): the event then shows the object as the API
    will once the transaction commits."""
    outbox = OutboxRepository(session)
    await session.flush()
    await outbox.finish(attempt.row)
    await outbox.refresh_object(attempt.row.object_type, attempt.row.object_id)


OPERATIONS: dict[str, Operation] = {
    "customer.ensure": ensure_customer,
    "customer.update": update_customer,
    "customer.delete": delete_customer,
    "subscription.create": create_subscription,
}
