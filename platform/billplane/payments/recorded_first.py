"""A charge whose provider webhook came first: billplane's pending payment, and the payment that
webhook recorded for the same charge without naming billplane's (the provider did not report
``billplane_payment_id``), made one.

The recorded payment takes the pending one's invoice, which then follows the recorded payment's
outcome as it would have followed the charge's own answer; the pending payment is ``canceled``
with ``failure_code`` ``duplicate`` and a message naming the other. The money is counted once, on
the payment that holds the provider's id, and neither row is deleted: both stay in the history.
Only when the recorded payment is on no invoice and agrees with what the charge was sent (provider
account, customer, amount, currency); otherwise nothing changes and the tenant is shown both
(``action_required``).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from billplane.events.emit import emit
from billplane.payments import settlement
from billplane.payments.models import DUPLICATE_CODE, Payment
from billplane.payments.repository import PaymentRepository
from billplane.payments.schemas import Payment as PaymentView


def _same_charge(pending: Payment, recorded: Payment) -> bool:
    return (
        recorded.id != pending.id
        and pending.invoice_id is not None
        and recorded.invoice_id is None
        and recorded.status in {"pending", "succeeded", "failed"}
        and (recorded.provider_account_id, recorded.customer_id, recorded.amount, recorded.currency)
        == (pending.provider_account_id, pending.customer_id, pending.amount, pending.currency)
    )


async def adopt(session: AsyncSession, pending: Payment, recorded_id: int) -> Payment | None:
    """Make payment ``recorded_id`` the one that pays ``pending``'s invoice, and cancel ``pending``
    (locked by the caller, and still waiting: unconfirmed, or pending at the provider); the
    recorded payment, or None when it is not the same charge by the rules above (nothing changed)."""
    recorded = await PaymentRepository(session=session).lock(recorded_id)
    if recorded is None or not _same_charge(pending, recorded):
        return None
    recorded.invoice_id = pending.invoice_id
    pending.status, pending.action_required, pending.failure_code = "canceled", None, DUPLICATE_CODE
    pending.failure_message = (
        f"the provider's charge {recorded.provider_payment_id} is recorded as payment {recorded.id} (from the "
        "provider's webhook), which pays the invoice instead"
    )
    await session.flush()
    for payment, change in ((pending, "payment.canceled"), (recorded, "payment.updated")):
        await session.refresh(payment)
        await emit(session, change, "payment", payment.id, PaymentView.of(payment))
    if recorded.status != "pending":  # a pending one takes the invoice along when its webhook settles it
        await settlement.invoice_follows(session, recorded, "succeeded" if recorded.status == "succeeded" else "failed")
    return recorded
