"""Showing the tenant a payment or a refund that waits for them (``action_required``), once.

Settling a payment or a refund clears it (``billplane.payments.settlement``); a payment that
settled but still needs the tenant (paid twice) keeps it.
"""

from __future__ import annotations

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
