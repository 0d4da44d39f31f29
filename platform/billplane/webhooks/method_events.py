"""Appliers for payment methods attached, changed or detached at the provider itself (Stripe's
Dashboard, a card updater renewing an expiry), so that billplane charges what the provider holds.

A method attached there to a customer billplane knows at that account is registered as if the
tenant had sent its token, never as the customer's default (Stripe does not make it one either);
one billplane knows is updated, or detached as ``DELETE`` would (a subscription that named it
moves to the customer's default). An event older than the method's last applied event, or than
billplane's own attach or detach at the provider (``provider_event_at``), is stale: delivered
late, it would undo what happened since. Locks are taken as a request takes them: the customer's
row first (``locked_live``), then the method's.
"""

from __future__ import annotations

from sqlalchemy import select

from billplane.customers.models import Customer
from billplane.customers.repository import locked_live
from billplane.payments import method_changes
from billplane.payments.models import PaymentMethod
from billplane.plugins.contract import ProviderEvent, ProviderPaymentMethod
from billplane.webhooks.models import StoredEvent
from billplane.webhooks.object_events import Outcome
from billplane.webhooks.repository import EventRepository

_NO_METHOD = "the event carries no payment method"


async def method_attached(events: EventRepository, row: StoredEvent, event: ProviderEvent) -> Outcome:
    details = event.payment_method
    if details is None:
        return "ignored", _NO_METHOD
    if details.provider_customer_id is None:
        return "ignored", "the event names no customer the method is attached to"
    customer = await _customer(events, row.provider_account_id, details.provider_customer_id)
    if customer is None:
        return "ignored", "no live local customer has this provider id at this account"
    method = await _method(events, row.provider_account_id, details.provider_payment_method_id)
    if method is not None and (why_not := _not_attached_again(method, customer, event)):
        return "ignored", why_not
    before = method_changes.shown(method)
    if method is None:
        method = PaymentMethod(
            customer_id=customer.id,
            provider=row.provider,
            provider_account_id=row.provider_account_id,
            provider_payment_method_id=details.provider_payment_method_id,
        )
        events.session.add(method)
    _described(method, details, event)
    method.detached_at = None
    await method_changes.announced(events.session, method, before)
    return "applied", None


def _not_attached_again(method: PaymentMethod, customer: Customer, event: ProviderEvent) -> str | None:
    """Why the provider's attach of a method billplane knows changes nothing; None: it is taken."""
    if method_changes.stale(method, event.occurred_at):
        return "older than the last event applied to this payment method"
    if method.detached_at is not None and event.occurred_at == method.provider_event_at:
        # Two events of one second, in either order: the detach is the later (Stripe never
        # attaches a PaymentMethod it detached). Taken, billplane would charge a detached method.
        return "detached in the same second: a detached payment method is not attached again"
    if method.customer_id != customer.id:
        # Moved between customers at the provider: billplane keeps a method with one customer.
        return "the payment method is registered for another customer"
    return None


async def method_updated(events: EventRepository, row: StoredEvent, event: ProviderEvent) -> Outcome:
    method = await _current(events, row, event)
    if isinstance(method, tuple):
        return method
    if method.detached_at is not None:
        method_changes.watermarked(method, event.occurred_at)
        return "ignored", "the payment method is detached"
    before = method_changes.shown(method)
    assert event.payment_method is not None  # noqa: S101 - _current checked it
    _described(method, event.payment_method, event)
    await method_changes.announced(events.session, method, before)
    return "applied", None


async def method_detached(events: EventRepository, row: StoredEvent, event: ProviderEvent) -> Outcome:
    method = await _current(events, row, event)
    if isinstance(method, tuple):
        return method
    method_changes.watermarked(method, event.occurred_at)
    if method.detached_at is not None:
        return "applied", "it was detached already"
    await method_changes.detached(events.session, method)
    return "applied", None


async def _current(events: EventRepository, row: StoredEvent, event: ProviderEvent) -> PaymentMethod | Outcome:
    """The known method the event is about, locked, unless the event is older than what it shows;
    else why the event changes nothing."""
    if event.payment_method is None:
        return "ignored", _NO_METHOD
    method = await _known(events, row.provider_account_id, event.payment_method.provider_payment_method_id)
    if method is None:
        return "ignored", "no local payment method has this provider id at this account"
    if method_changes.stale(method, event.occurred_at):
        return "ignored", "older than the last event applied to this payment method"
    return method


def _described(method: PaymentMethod, details: ProviderPaymentMethod, event: ProviderEvent) -> None:
    method_changes.described(method, details)
    method_changes.watermarked(method, event.occurred_at)


async def _customer(events: EventRepository, account_id: int, provider_customer_id: str) -> Customer | None:
    customer_id = await events.customer_id_at(account_id, provider_customer_id)
    if customer_id is None:
        return None
    query = select(Customer).where(Customer.id == customer_id, Customer.deleted_at.is_(None))
    return (await events.session.execute(locked_live(query))).scalar_one_or_none()


async def _method(events: EventRepository, account_id: int, provider_payment_method_id: str) -> PaymentMethod | None:
    query = select(PaymentMethod).where(
        PaymentMethod.provider_account_id == account_id,
        PaymentMethod.provider_payment_method_id == provider_payment_method_id,
    )
    query = query.with_for_update().execution_options(populate_existing=True)
    return (await events.session.execute(query)).scalar_one_or_none()


async def _known(events: EventRepository, account_id: int, provider_payment_method_id: str) -> PaymentMethod | None:
    """The method with its customer's row locked first, as every write for a customer locks it."""
    customer_id = await events.session.scalar(
        select(PaymentMethod.customer_id).where(
            PaymentMethod.provider_account_id == account_id,
            PaymentMethod.provider_payment_method_id == provider_payment_method_id,
        )
    )
    if customer_id is None:
        return None
    await events.session.execute(locked_live(select(Customer).where(Customer.id == customer_id)))
    return await _method(events, account_id, provider_payment_method_id)
