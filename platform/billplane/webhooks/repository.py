"""All SQL for stored provider events and for the objects they change."""

from __future__ import annotations

from datetime import datetime

import msgspec
from sqlalchemy import and_, func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.customers import provider_ids
from billplane.customers.models import Customer, ProviderCustomer
from billplane.db.mixins import MAX_ID
from billplane.invoices.models import Invoice
from billplane.payments.models import WITHOUT_PROVIDERS_WORD, Payment, Refund
from billplane.plugins.contract import ProviderEvent, RefundResult
from billplane.subscriptions.catching_up import CatchUp
from billplane.subscriptions.models import Subscription
from billplane.sync.models import OutboxEntry
from billplane.webhooks.models import StoredEvent


class EventRepository:
    """SQL of the stored provider events and the rows they change; ``provider_billed`` names the
    providers that invoice their subscriptions themselves, whose periods an event may set."""

    def __init__(
        self, session: AsyncSession, provider_billed: frozenset[str] = frozenset(), catch_up: CatchUp | None = None
    ) -> None:
        self.session = session
        self.provider_billed = provider_billed
        # How the billing run bills this tenant, for an event that must bill an ended period first.
        self.catch_up = catch_up

    def bills_subscriptions(self, provider: str) -> bool:
        return provider in self.provider_billed

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

    async def find(self, event_id: int) -> StoredEvent | None:
        return await self.session.get(StoredEvent, event_id) if 1 <= event_id <= MAX_ID else None

    async def page(
        self, *, status: str | None, provider_account_id: int | None, after: int | None, limit: int
    ) -> list[StoredEvent]:
        """Up to ``limit + 1`` events in id order after ``after`` (the extra one says a next page exists)."""
        query = select(StoredEvent).order_by(StoredEvent.id).limit(limit + 1)
        if status is not None:
            query = query.where(StoredEvent.status == status)
        if provider_account_id is not None:
            query = query.where(StoredEvent.provider_account_id == provider_account_id)
        if after is not None:
            query = query.where(StoredEvent.id > after)
        return list((await self.session.execute(query)).scalars())

    async def lock(self, event_id: int) -> StoredEvent | None:
        """The stored event, locked: two jobs for one event apply it once, and a reapply
        (``billplane.webhooks.service.reapply``) never meets a job half-way."""
        if not 1 <= event_id <= MAX_ID:  # a path's id beyond bigint names nothing
            return None
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

    async def change_sent(self, subscription_id: int, account_id: int) -> tuple[bool, datetime | None]:
        """(whether a change billplane made to the subscription is still queued for this account,
        when the latest one that reached the provider was made, to the whole second). The create
        is not counted: no provider event can name a subscription before it; nor is a metadata
        edit, which no provider event undoes (a status held back for it would wait for nothing,
        and one older than it be ignored). A change that gave up
        (``failed``), or that its row found nothing to send for (no provider call: ``calls`` 0),
        never reached the provider, whose word then stands. Whole seconds: Stripe's event times
        are, so its own event about the change, in the second the change was made, is not older."""
        sent = and_(OutboxEntry.status == "done", OutboxEntry.calls > 0)
        query = select(
            func.bool_or(OutboxEntry.status == "pending"),
            func.date_trunc("second", func.max(OutboxEntry.created_at).filter(sent)),
        ).where(
            OutboxEntry.object_id == subscription_id,
            OutboxEntry.provider_account_id == account_id,
            OutboxEntry.kind.startswith("subscription."),
            OutboxEntry.kind.not_in(("subscription.create", "subscription.metadata")),
        )
        pending, made = (await self.session.execute(query)).one()
        return bool(pending), made

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

    async def invoice(self, account_id: int, provider_invoice_id: str) -> Invoice | None:
        query = (
            select(Invoice)
            .where(Invoice.provider_account_id == account_id, Invoice.provider_invoice_id == provider_invoice_id)
            .with_for_update()
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def refund(self, account_id: int, provider_refund_id: str) -> Refund | None:
        query = (
            select(Refund)
            .join(Payment, Payment.id == Refund.payment_id)
            .where(Payment.provider_account_id == account_id, Refund.provider_refund_id == provider_refund_id)
            .with_for_update(of=Refund)
        )
        return (await self.session.execute(query)).scalars().first()

    async def refund_reported(self, account_id: int, result: RefundResult) -> Refund | None:
        """The refund a provider's event reports, when billplane never got the answer to it (no
        provider refund id yet), locked; else None. Such a refund may be pending still, or failed
        meanwhile without the provider's word: resolved failed by the tenant, or failed because the
        provider, asked, had no such refund (the provider's "succeeded" then overrules either). The
        event must name the refund (``billplane_refund_id``) and agree on the payment and the
        amount: one provider account may serve several tenants, whose refund ids overlap."""
        if result.billplane_refund_id is None or result.provider_payment_id is None:
            return None
        query = (
            select(Refund)
            .join(Payment, Payment.id == Refund.payment_id)
            .where(
                Refund.id == result.billplane_refund_id,
                or_(
                    Refund.status == "pending",
                    and_(Refund.status == "failed", Refund.failure_code.in_(WITHOUT_PROVIDERS_WORD)),
                ),
                Refund.provider_refund_id.is_(None),
                Refund.amount == result.amount,
                Payment.provider_account_id == account_id,
                Payment.provider_payment_id == result.provider_payment_id,
            )
            .with_for_update(of=Refund)
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def customer_id_at(self, account_id: int, provider_customer_id: str) -> int | None:
        query = select(ProviderCustomer.customer_id).where(
            ProviderCustomer.provider_account_id == account_id,
            ProviderCustomer.provider_customer_id == provider_customer_id,
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    def add(self, row: Invoice | Payment | Refund) -> None:
        self.session.add(row)

    async def flush(self) -> None:
        await self.session.flush()
