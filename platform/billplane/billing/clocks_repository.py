"""All SQL for test clocks and the rows their rules look at."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import exists, select, union, update

from billplane.billing.dunning_retry import never_attempted
from billplane.billing.models import TestClock
from billplane.customers.models import Customer
from billplane.db.mixins import MAX_ID
from billplane.db.repository import TenantRepository
from billplane.events.models import Event
from billplane.invoices.models import Invoice
from billplane.payments.models import Payment
from billplane.provider_accounts.models import ProviderAccount
from billplane.subscriptions.models import Subscription

ADVANCING_EVENT = "test_clock.advancing"
FAILED_EVENT = "test_clock.advance_failed"
TARGET_KEY = "advancing_to"


class ClockRepository(TenantRepository[TestClock]):
    model_type = TestClock

    async def lock(self, clock_id: int, *, skip_locked: bool = False) -> TestClock | None:
        if not 1 <= clock_id <= MAX_ID:
            return None
        query = select(TestClock).where(TestClock.id == clock_id).with_for_update(skip_locked=skip_locked)
        return (await self.session.execute(query.execution_options(populate_existing=True))).scalar_one_or_none()

    async def target(self, clock_id: int) -> datetime | None:
        """Where the clock's current advance stops: recorded by its ``test_clock.advancing`` event,
        the one place it is kept (the schema has no column for it)."""
        query = (
            select(Event.data[TARGET_KEY].astext)
            .where(Event.object_type == "test_clock", Event.object_id == clock_id, Event.type == ADVANCING_EVENT)
            .order_by(Event.id.desc())
            .limit(1)
        )
        value = await self.session.scalar(query)
        return None if value is None else datetime.fromisoformat(value)

    async def live_customers(self, clock_id: int) -> bool:
        query = select(Customer.id).where(Customer.test_clock_id == clock_id, Customer.deleted_at.is_(None))
        return bool(await self.session.scalar(select(exists(query))))

    async def never_attempted(self, clock_id: int) -> list[int]:
        """The clock's customers' open invoices whose first attempt is due (``dunning_retry``)."""
        query = (
            select(Invoice.id)
            .join(Customer, Customer.id == Invoice.customer_id)
            .where(Customer.test_clock_id == clock_id, Invoice.status == "open", never_attempted())
            .order_by(Invoice.id)
        )
        return list(await self.session.scalars(query))

    async def stop_retries(self, clock_id: int) -> list[Invoice]:
        """The clock's customers' open invoices, their dunning retries dropped: scheduled on the
        clock's time, they would all fall due at once on real time (or years ahead of it)."""
        customers = select(Customer.id).where(Customer.test_clock_id == clock_id)
        statement = (
            update(Invoice)
            .where(Invoice.customer_id.in_(customers), Invoice.next_payment_attempt_at.is_not(None))
            .values(next_payment_attempt_at=None)
            .returning(Invoice)
            .execution_options(populate_existing=True, synchronize_session=False)
        )
        return list((await self.session.execute(statement)).scalars())

    async def release_deleted_customers(self, clock_id: int) -> None:
        await self.session.execute(
            update(Customer).where(Customer.test_clock_id == clock_id).values(test_clock_id=None)
        )

    async def customer(self, customer_id: int) -> Customer | None:
        query = select(Customer).where(Customer.id == customer_id, Customer.deleted_at.is_(None)).with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()

    async def has_billing_history(self, customer_id: int) -> bool:
        subscriptions = select(Subscription.id).where(Subscription.customer_id == customer_id)
        invoices = select(Invoice.id).where(Invoice.customer_id == customer_id)
        return bool(await self.session.scalar(select(exists(subscriptions) | exists(invoices))))

    async def live_mode_accounts(self, tenant_id: int, account_ids: list[int]) -> list[int]:
        """Of the tenant's live-mode accounts, those that are defaults or among ``account_ids``."""
        query = select(ProviderAccount.id).where(
            ProviderAccount.tenant_id == tenant_id,
            ProviderAccount.status == "active",
            ProviderAccount.mode == "live",
            ProviderAccount.is_default | ProviderAccount.id.in_(account_ids),
        )
        return list(await self.session.scalars(query.order_by(ProviderAccount.id)))

    async def clock_accounts(self, clock_id: int) -> list[int]:
        """Accounts the clock's customers are known at, subscribe through, or have a charge pending
        through (written by a step, not made yet: the account it goes through, whatever chose it)."""
        customers = select(Customer.provider_ids).where(Customer.test_clock_id == clock_id)
        ids = {int(ref["provider_account_id"]) for refs in await self.session.scalars(customers) for ref in refs}
        subscribed = select(Subscription.provider_account_id).join(Customer, Customer.id == Subscription.customer_id)
        subscribed = subscribed.where(Customer.test_clock_id == clock_id, Subscription.provider_account_id.is_not(None))
        charged = select(Payment.provider_account_id).join(Customer, Customer.id == Payment.customer_id)
        charged = charged.where(
            Customer.test_clock_id == clock_id, Payment.status == "pending", Payment.provider_account_id.is_not(None)
        )
        accounts = await self.session.scalars(union(subscribed, charged))
        ids |= {int(account) for account in accounts if account is not None}
        return sorted(ids)

    async def live_accounts(self, tenant_id: int, clock_id: int) -> list[int]:
        """The live-mode accounts the clock's customers would be charged through: checked when an
        advance is asked, and again at each of its steps."""
        return await self.live_mode_accounts(tenant_id, await self.clock_accounts(clock_id))
