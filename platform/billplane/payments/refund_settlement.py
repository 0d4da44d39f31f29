"""Recording a refund's outcome, whoever learned it: the worker that made the provider call, the
provider's webhook, the reconciliation job, or the tenant (``POST /v1/refunds/{id}/resolve``).

A refund's amount is reserved on its payment (``refunded_amount``) when the refund is made; a
refund that fails gives it back. Settled refunds move only forward, except on the provider's word
about money that did move: a refund that succeeded and then failed at the provider (Stripe: the
card was closed since) gives its amount back; a refund the tenant resolved failed that the
provider reports succeeded after all takes its amount again (``refund_cleared``), as does one
failed because the provider, asked, had no such refund. Every change is
an event in the same transaction.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from billplane.events.emit import emit
from billplane.payments import attention
from billplane.payments.models import DUPLICATE_CODE, Payment, Refund
from billplane.payments.repository import PaymentRepository
from billplane.payments.schemas import Refund as RefundView
from billplane.plugins.contract import RefundResult, RefundStatus


async def refund_settled(
    session: AsyncSession,
    refund: Refund,
    status: RefundStatus,
    provider_refund_id: str | None = None,
    *,
    failure_code: str | None = None,
    failure_message: str | None = None,
) -> None:
    """An answer about a pending refund, or the provider failing one that had succeeded (never a
    failed one: its amount went back already); a failed one gives its amount back to the payment.
    ``pending`` records the provider's id only."""
    if provider_refund_id is not None and refund.provider_refund_id is None:
        refund.provider_refund_id = provider_refund_id
        if refund.status == "pending":
            # Confirmed at last: no longer "could not be confirmed"; asked about like any refund held as pending.
            refund.action_required, refund.provider_checked_at = None, None
    if status == "pending":
        await session.flush()
        return
    refund.status = status
    refund.action_required = None
    refund.failure_code = failure_code if status == "failed" else None
    refund.failure_message = failure_message if status == "failed" else None
    if status == "failed":
        payment = await _locked_payment(session, refund)
        payment.refunded_amount = max(payment.refunded_amount - refund.amount, 0)
    await _emitted(session, refund)


async def refund_answered(session: AsyncSession, refund: Refund, result: RefundResult) -> None:
    """The provider's answer to billplane's refund call, or the refund ``find_refund`` found of a
    call whose answer was lost, recorded on the pending refund the caller holds locked.

    Its webhook may have come first without naming this refund, and been recorded as a refund of
    its own, which counts the money: this one is then the same refund, and gives its amount back."""
    other = await PaymentRepository(session=session).other_refund(result.provider_refund_id, than=refund.id)
    if other is not None:
        message = f"refund {other.id} records this provider refund ({result.provider_refund_id}), from its webhook"
        await refund_settled(session, refund, "failed", failure_code=DUPLICATE_CODE, failure_message=message)
        return
    await refund_settled(
        session, refund, result.status, result.provider_refund_id, failure_message=result.failure_message
    )


async def refund_cleared(session: AsyncSession, refund: Refund, provider_refund_id: str | None = None) -> None:
    """The provider reports ``succeeded`` a refund failed without its word (resolved failed by the
    tenant, or "no such refund" when asked): the money went back after all. Its amount is reserved
    again; if refunds made since leave no room for it, the customer got more back than was paid,
    and the refund stays failed here, shown to the tenant."""
    if provider_refund_id is not None and refund.provider_refund_id is None:
        refund.provider_refund_id = provider_refund_id
    payment = await _locked_payment(session, refund)
    room = payment.amount - payment.refunded_amount
    if refund.amount > room:
        await attention.flag(session, refund, refunded_twice(refund, room))
        return
    payment.refunded_amount += refund.amount
    refund.status, refund.failure_code, refund.failure_message, refund.action_required = "succeeded", None, None, None
    await _emitted(session, refund)


async def failure_confirmed(
    session: AsyncSession, refund: Refund, provider_refund_id: str | None, failure_message: str | None
) -> None:
    """The provider says ``failed`` about a refund failed without its word: the failure is now
    the provider's, and final, so an older "succeeded" arriving later no longer reopens it. Its
    amount went back already; a "refunded twice" flag no longer holds and is cleared."""
    if provider_refund_id is not None and refund.provider_refund_id is None:
        refund.provider_refund_id = provider_refund_id
    refund.failure_code, refund.action_required = None, None
    refund.failure_message = failure_message or refund.failure_message
    await session.flush()


async def overruling(session: AsyncSession, refund: Refund, result: RefundResult) -> tuple[str, str | None]:
    """The provider's word about a refund failed without it (resolved failed by the tenant, or "no
    such refund" when asked): ``succeeded``, the money went back after all; ``failed``, the failure
    is the provider's, and final (events arrive in any order: an older "succeeded" must not reopen
    it). Whoever brings it: its webhook (``webhooks.money_events``), or the reconciliation job and
    ``POST /v1/refunds/{id}/sync`` that asked while the tenant resolved it (``pending_refunds``).
    Says whether it was applied, and why not, as a webhook's outcome."""
    if result.status == "succeeded":
        await refund_cleared(session, refund, result.provider_refund_id)
        return "applied", None
    if result.status == "failed":
        await failure_confirmed(session, refund, result.provider_refund_id, result.failure_message)
        return "applied", None
    return "ignored", "the refund is already failed"


async def _locked_payment(session: AsyncSession, refund: Refund) -> Payment:
    payment = await session.get(Payment, refund.payment_id, with_for_update=True, populate_existing=True)
    if payment is None:  # the foreign key keeps it
        raise LookupError(f"refund {refund.id} has no payment {refund.payment_id}")
    return payment


async def _emitted(session: AsyncSession, refund: Refund) -> None:
    await session.flush()
    await session.refresh(refund)
    await emit(session, f"refund.{refund.status}", "refund", refund.id, RefundView.of(refund))


def refunded_twice(refund: Refund, room: int) -> str:
    return (
        f"the provider refunded this after all ({refund.amount} {refund.currency}), after it was settled as failed; "
        f"with the refunds made since, the customer got {refund.amount - room} {refund.currency} more back than was "
        "paid. billplane counts no more than was paid, so this refund stays failed here: recover the excess from "
        "the customer, or settle it with them."
    )


def unlike(found: RefundResult, refund: Refund, payment: Payment | None) -> str | None:
    """Why the provider's refund is not this one (in words following the provider's name); None
    when nothing it says makes it another. One provider account may serve several tenants, whose
    refund ids overlap: the provider's answer must agree on what billplane sent."""
    if found.billplane_refund_id is not None and found.billplane_refund_id != refund.id:
        return f"says that refund is billplane refund {found.billplane_refund_id}'s, not this one's"
    if payment is not None and found.provider_payment_id not in {None, payment.provider_payment_id}:
        return f"says that refund is of another payment ({found.provider_payment_id})"
    if (found.amount is not None and found.amount != refund.amount) or found.currency not in {None, refund.currency}:
        return f"says that refund is of {found.amount} {found.currency}, not {refund.amount} {refund.currency}"
    return None
