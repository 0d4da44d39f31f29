"""What attaching, changing and detaching a payment method writes in billplane, and the events it
emits: the same whether the tenant asked through the API (``billplane.payments.methods``) or the
provider reported it (``billplane.webhooks.method_events``).

The caller holds the customer's row lock (``locked_live``) and the method's own row lock.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.events import types
from billplane.events.changes import changed
from billplane.events.emit import emit
from billplane.payments.method_schemas import PaymentMethod as PaymentMethodView
from billplane.payments.models import PaymentMethod
from billplane.plugins.contract import ProviderPaymentMethod
from billplane.subscriptions.models import ENDED_STATUSES, Subscription
from billplane.subscriptions.schemas import Subscription as SubscriptionView


def shown(method: PaymentMethod | None) -> PaymentMethodView | None:
    """The method as the API shows it; None for one not attached (or not there): what it becomes
    is then ``payment_method.attached``, not ``.updated``."""
    return None if method is None or method.detached_at is not None else PaymentMethodView.of(method)


def described(method: PaymentMethod, details: ProviderPaymentMethod) -> None:
    """What the provider says identifies the method to a person: type, brand, last 4, expiry."""
    method.type, method.brand, method.last4 = details.type, details.brand, _last4(details.last4)
    method.exp_month, method.exp_year = _month(details.exp_month), details.exp_year


async def announced(session: AsyncSession, method: PaymentMethod, before: PaymentMethodView | None) -> None:
    """``payment_method.attached`` for a method attached now (``before`` None), ``.updated`` for
    one the API shows changed; nothing for a retry, or a provider repeating what billplane shows."""
    await session.flush()
    await session.refresh(method)  # what the database set (created_at, updated_at)
    after = PaymentMethodView.of(method)
    if before is None:
        await emit(session, types.PAYMENT_METHOD_ATTACHED, types.PAYMENT_METHOD_OBJECT, method.id, after)
    elif changed(before, after):
        await emit(session, types.PAYMENT_METHOD_UPDATED, types.PAYMENT_METHOD_OBJECT, method.id, after)


def stale(method: PaymentMethod, at: datetime) -> bool:
    """Whether the provider's word of ``at`` is older than what the method already shows."""
    return method.provider_event_at is not None and at < method.provider_event_at


def watermarked(method: PaymentMethod, at: datetime) -> None:
    """The method's state is the provider's as of ``at``: an event older than that is stale."""
    if method.provider_event_at is None or method.provider_event_at < at:
        method.provider_event_at = at


async def cleared_default(session: AsyncSession, customer_id: int, account_id: int, *, keeping: int | None) -> None:
    """The customer's other default at the account is one no more: ``payment_method.updated``
    (a client keeping each object's latest event would otherwise hold two defaults)."""
    query = select(PaymentMethod).where(
        PaymentMethod.customer_id == customer_id,
        PaymentMethod.provider_account_id == account_id,
        PaymentMethod.is_default.is_(True),
    )
    if keeping is not None:
        query = query.where(PaymentMethod.id != keeping)
    for former in (await session.execute(query.with_for_update())).scalars():
        former.is_default = False
        await session.flush()
        await session.refresh(former)  # updated_at, as the database set it
        view = PaymentMethodView.of(former)
        await emit(session, types.PAYMENT_METHOD_UPDATED, types.PAYMENT_METHOD_OBJECT, former.id, view)


async def detached(session: AsyncSession, method: PaymentMethod) -> None:
    """billplane charges the (attached) method no more: a live subscription that named it is
    charged with the customer's default method at its account from then on, and a charge queued
    before and not sent yet moves to that method too (``billplane.payments.operations``)."""
    view = PaymentMethodView.of(method)
    method.detached_at = datetime.now(UTC)
    method.is_default = False
    pinned = select(Subscription).where(
        Subscription.payment_method_id == method.id, Subscription.status.not_in(ENDED_STATUSES)
    )
    for subscription in (await session.execute(pinned.with_for_update())).scalars():
        subscription.payment_method_id = None
        await session.flush()
        await session.refresh(subscription)  # updated_at, as the database set it
        changed_view = SubscriptionView.of(subscription)
        await emit(session, types.SUBSCRIPTION_UPDATED, types.SUBSCRIPTION_OBJECT, subscription.id, changed_view)
    await session.flush()
    await emit(session, types.PAYMENT_METHOD_DETACHED, types.PAYMENT_METHOD_OBJECT, method.id, view)


def _last4(value: str | None) -> str | None:
    # The table takes four digits or nothing: a provider's other shapes are not kept.
    return value if value is not None and len(value) == 4 and value.isdigit() else None  # noqa: PLR2004


def _month(value: int | None) -> int | None:
    return value if value is not None and 1 <= value <= 12 else None  # noqa: PLR2004
