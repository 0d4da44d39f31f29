"""Showing the tenant a payment that waits for them (``action_required``), once.

Settling a payment clears it (``billplane.payments.settlement``); a payment that settled but
still needs the tenant (paid twice) keeps it.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from billplane.events.emit import emit
from billplane.payments.models import Payment
from billplane.payments.schemas import Payment as PaymentView

ACTION_REQUIRED_EVENT = "payment.action_required"


async def flag(session: AsyncSession, locked: Payment, message: str) -> bool:
    """Set ``action_required`` on a payment the caller holds locked and emit
    ``payment.action_required``; False (nothing done) when it already says something."""
    if locked.action_required is not None:
        return False
    locked.action_required = message
    await session.flush()
    await session.refresh(locked)
    await emit(session, ACTION_REQUIRED_EVENT, "payment", locked.id, PaymentView.of(locked))
    return True
