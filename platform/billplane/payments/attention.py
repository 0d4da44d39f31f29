"""Showing the tenant a payment or a refund that waits for them (``action_required``), once.

Settling a payment or a refund clears it (``billplane.payments.settlement``); a payment that
settled but still needs the tenant (paid twice) keeps it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from billplane.events.emit import emit
from billplane.payments.models import Payment, Refund
from billplane.payments.schemas import Payment as PaymentView
from billplane.payments.schemas import Refund as RefundView

ACTION_REQUIRED_EVENT = "payment.action_required"
REFUND_ACTION_REQUIRED_EVENT = "refund.action_required"


async def flag(session: AsyncSession, locked: Payment | Refund, message: str) -> bool:
    """Set ``action_required`` on a payment or refund the caller holds locked and emit
    ``payment.action_required`` or ``refund.action_required``; False (nothing done) when it
    already says something."""
    if locked.action_required is not None:
        return False
    locked.action_required = message
    await session.flush()
    await session.refresh(locked)
    if isinstance(locked, Refund):
        await emit(session, REFUND_ACTION_REQUIRED_EVENT, "refund", locked.id, RefundView.of(locked))
    else:
        await emit(session, ACTION_REQUIRED_EVENT, "payment", locked.id, PaymentView.of(locked))
    return True


async def wait_or_flag(
    session: AsyncSession,
    locked: Payment | Refund,
    *,
    created_at: datetime,
    now: datetime,
    flag_after: timedelta,
    message: str,
) -> bool:
    """Nothing settled what the provider holds as pending: it is asked about again after the
    interval (``provider_checked_at``), or, once it is ``flag_after`` old, shown to the tenant with
    ``message``. True when it was shown now."""
    if now - created_at < flag_after:
        locked.provider_checked_at = now
        await session.flush()
        return False
    return await flag(session, locked, message)
