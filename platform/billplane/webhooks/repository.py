"""All SQL for stored provider events and for the objects they change."""

from __future__ import annotations

import msgspec
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.customers import provider_ids
from billplane.customers.models import Customer, ProviderCustomer
from billplane.payments.models import Payment
from billplane.plugins.contract import ProviderEvent
from billplane.subscriptions.models import Subscription
from billplane.webhooks.models import StoredEvent


class EventRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def store(
        self, provider: str, account_id: int, events: list[ProviderEvent], raw_body: bytes
    ) -> tuple[list[int], int]:
        """Insert the events not seen before; returns the new rows' ids and how many were duplicates."""
        if not events:
            return [], 0
        rows = [
            {
                "provider": provider,
                "provider_account_id": account_id,
                "event_id": event.event_id,
                "type": event.type,
                "provider_object_id": event.provider_object_id,
                "occurred_at": event.occurred_at,
                "raw_body": raw_body,
                "event": msgspec.to_builtins(event),
            }
            for event in events
        ]
        statement = (
            insert(StoredEvent)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["provider_account_id", "event_id"])
            .returning(StoredEvent.id)
        )
        new = list((await self.session.execute(statement)).scalars())
        return new, len(events) - len(new)

    async def lock(self, event_id: int) -> StoredEvent | None:
        """The stored event, locked: two jobs for one event apply it once."""
        query = select(StoredEvent).where(StoredEvent.id == event_id).with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()

    async def subscription(self, account_id: int, provider_subscription_id: str) -> Subscription | None:
        query = (
            select(Subscription)
            .where(
                Subscription.provider_account_id == account_id,
                Subscription.provider_subscription_id == provider_subscription_id,
            )
            .with_for_update()
        )
        return (await self.session.execute(query)).scalars().first()

    async def customer_at(self, account_id: int, provider_customer_id: str) -> Customer | None:
        query = (
            select(Customer)
            .join(ProviderCustomer, ProviderCustomer.customer_id == Customer.id)
            .where(
                ProviderCustomer.provider_account_id == account_id,
                ProviderCustomer.provider_customer_id == provider_customer_id,
            )
            .with_for_update(of=Customer)
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def forget_provider_customer(self, account_id: int, provider_customer_id: str) -> None:
        await provider_ids.forget(self.session, account_id, provider_customer_id)

    async def payment(self, account_id: int, provider_payment_id: str) -> Payment | None:
        query = (
            select(Payment)
            .where(Payment.provider_account_id == account_id, Payment.provider_payment_id == provider_payment_id)
            .with_for_update()
        )
        return (await self.session.execute(query)).scalar_one_or_none()
