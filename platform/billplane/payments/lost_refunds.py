"""Refunds billplane could not confirm, looked up at a provider with ``refund_lookup``.

A ``refund.create`` row that gives up (every attempt without an answer, or refused after one
that may have refunded) leaves its refund ``pending`` with no provider id and its amount reserved
on the payment: billplane does not know whether the provider refunded. Once the row failed
``BILLPLANE_PAYMENT_RECONCILE_AFTER_MINUTES`` ago, so that a request still in flight has landed,
the provider is asked (``find_refund``) with the request as it was sent. A refund found is
recorded as the worker would have recorded its answer; "no such refund" fails the refund
(``provider_unreachable``), which gives its amount back, for the tenant to refund again. A
provider that cannot answer now is asked again on the next run; after
``BILLPLANE_PAYMENT_PENDING_FLAG_HOURS`` the refund is shown to the tenant.

Each step re-reads the refund under its row lock: its webhook may have settled it meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from billplane.payments import attention
from billplane.payments.models import Payment, Refund
from billplane.payments.operations import refund_request
from billplane.payments.pending_refunds import (
    HeldRefund,
    LostRefund,
    latest_refund_row,
    locked_for_answer,
    locked_if_waiting,
    overrule,
)
from billplane.payments.reconcile import CLOCK_MARGIN, UNREACHABLE_CODE, Recorded, too_early
from billplane.payments.refund_settlement import refund_answered, refund_settled, unlike
from billplane.plugins.contract import RefundResult
from billplane.sync.refs import idempotency_key

NOT_MADE_MESSAGE = "the provider has no such refund: it was never made, and its amount can be refunded again"


@dataclass(frozen=True, slots=True)
class NotLost:
    """Why a refund is not (or not yet) one to look up; shown to the tenant as a 409."""

    reason: str


async def lost_refund(
    session: AsyncSession, tenant_id: int, held: HeldRefund, *, settle_after: timedelta, now: datetime
) -> LostRefund | NotLost:
    """The refund's request as it was last sent, if it gave up at least ``settle_after`` ago."""
    if held.provider_refund_id is not None:
        return NotLost(f"{held.provider} has this refund ({held.provider_refund_id}): ask how it stands instead")
    row = await latest_refund_row(session, held.refund_id)
    if row is None:
        return NotLost("the refund has no request made to a provider")
    if row.status != "failed":
        return NotLost(f"the refund's request has not given up (it is {row.status}): watch the refund for its outcome")
    early = too_early(row, "refund", settle_after=settle_after, now=now)
    if early is not None:
        return NotLost(early)
    refund = await session.get(Refund, held.refund_id)
    payment = await session.get(Payment, refund.payment_id) if refund is not None else None
    if refund is None or payment is None or payment.provider_payment_id is None:
        return NotLost("the refund's payment has no charge at a provider")
    return LostRefund(
        refund_id=refund.id,
        account_id=row.provider_account_id,
        provider=held.provider,
        request=refund_request(refund, payment.provider_payment_id),
        idempotency_key=idempotency_key(tenant_id, row.id),
        created_after=refund.created_at - CLOCK_MARGIN,
        last_error=row.last_error,
    )


async def record_found(session: AsyncSession, held: HeldRefund, found: RefundResult | None) -> Recorded:
    """Record what the provider answered, as the worker would have recorded the refund call's answer.

    ``unchanged``: the refund was settled (or confirmed) meanwhile, and nothing is recorded; but a
    refund failed since without the provider's word (the tenant resolved it ``failed`` while the
    provider was asked) takes the answer as its webhook would (``pending_refunds.overrule``). A
    refund found that says it is another (another of billplane's refunds, another payment, another
    amount or currency) is not taken as this one: the tenant is shown it."""
    locked = await locked_for_answer(session, held)
    if locked is None:
        return "unchanged"
    if locked.status != "pending":
        return await overrule(session, locked, found)
    if found is None:
        await refund_settled(session, locked, "failed", failure_code=UNREACHABLE_CODE, failure_message=NOT_MADE_MESSAGE)
        return "settled"
    why = unlike(found, locked, await session.get(Payment, locked.payment_id))
    if why is not None:
        flagged = await attention.flag(session, locked, _another(held, found, why))
        return "action_required" if flagged else "unchanged"
    await refund_answered(session, locked, found)
    return "settled"


async def no_answer(
    session: AsyncSession, held: HeldRefund, *, now: datetime, flag_after: timedelta, why: str
) -> Recorded:
    """The provider could not be asked now: asked again on the next run, after the tenant's other
    waiting refunds (``provider_checked_at`` orders the job's scan); shown to the tenant once the
    refund is ``flag_after`` old."""
    locked = await locked_if_waiting(session, held)
    if locked is None:
        return "unchanged"
    message = (
        f"billplane could not confirm this refund, and {held.provider} could not be asked whether it was made "
        f"({why}). Its amount stays reserved on the payment. Check at {held.provider}, then settle it with "
        f"POST /v1/refunds/{held.refund_id}/resolve, or ask again with POST /v1/refunds/{held.refund_id}/sync."
    )
    flagged = await attention.wait_or_flag(
        session, locked, created_at=held.created_at, now=now, flag_after=flag_after, message=message
    )
    return "action_required" if flagged else "unchanged"


def _another(held: HeldRefund, found: RefundResult, why: str) -> str:
    return (
        f"asked whether it made this refund, {held.provider} answered with {found.provider_refund_id} "
        f"({found.status}), but {held.provider} {why}: check at {held.provider}, then settle this refund with "
        f"POST /v1/refunds/{held.refund_id}/resolve. billplane will not send it again by itself."
    )


def refused(lost: LostRefund, reason: str) -> str:
    return (
        f"billplane could not confirm this refund, and {lost.provider} refused to say whether it made it "
        f"({reason}). Its amount stays reserved on the payment. Check at {lost.provider}, then settle it with "
        f"POST /v1/refunds/{lost.refund_id}/resolve, or, once the cause is fixed, ask again with "
        f"POST /v1/refunds/{lost.refund_id}/sync."
    )
