"""Refunds nothing settled: held as pending by the provider, or never confirmed.

A pending refund's amount stays reserved on its payment (``refunded_amount``) until it settles.
So a refund whose webhook was lost would wait for ever: the tenant could not refund that amount
again, and a refund that failed at the provider would leave the customer without the money while
billplane shows it on its way. The reconciliation job (``billplane.payments.refund_run``) finds:

- refunds the provider holds as pending (it gave their id): once such a refund has waited
  ``PendingChecks.every`` (since it was made, then since it was last asked about), billplane reads
  it from a provider with the ``refund_status`` capability and records a settled answer as the
  webhook would have. Anything else waits and is asked about again; once the refund is
  ``PendingChecks.flag_after`` old, it is shown to the tenant (``action_required``) with the last
  answer. A deleted account, through which nobody can ask, is shown at once.
- refunds never confirmed (no provider id): their ``refund.create`` row failed, every attempt
  without an answer or refused after one (``billplane.payments.operations.send_refund``). Once a
  request still in flight would have landed, a provider with the ``refund_lookup`` capability is
  asked whether it made the refund (``billplane.payments.lost_refunds``); for any other, the
  tenant is shown it then.

The tenant settles a shown refund with ``POST /v1/refunds/{id}/resolve`` after checking at the
provider; the provider's webhook still settles it whenever it comes. Each step re-reads the refund
under its row lock: the webhook may have settled it meanwhile. One the tenant resolved ``failed``
while the provider was being asked still takes the provider's answer, by the webhook's rule
(``overrule``): the money may have gone back after all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.payments import attention
from billplane.payments.models import WITHOUT_PROVIDERS_WORD, Payment, Refund
from billplane.payments.reconcile import Recorded
from billplane.payments.refund_settlement import overruling, refund_settled, unlike
from billplane.payments.repository import PaymentRepository
from billplane.plugins.contract import RefundRequest, RefundResult
from billplane.sync.models import OutboxEntry

REFUND_KIND = "refund.create"


@dataclass(frozen=True, slots=True)
class HeldRefund:
    """A pending refund and the account it went through: what ``refund_status`` is asked."""

    refund_id: int
    account_id: int
    provider: str
    provider_refund_id: str | None  # None: never confirmed
    created_at: datetime


@dataclass(frozen=True, slots=True)
class LostRefund:
    """A refund never confirmed, as its request was last sent: what ``find_refund`` is asked
    (``billplane.payments.lost_refunds``)."""

    refund_id: int
    account_id: int  # the account the request went to
    provider: str
    request: RefundRequest
    idempotency_key: str
    created_after: datetime
    last_error: str | None  # why its request gave up, in the outbox row's words


def held_refund(refund: Refund, payment: Payment) -> HeldRefund | None:
    if refund.status != "pending" or payment.provider_account_id is None or payment.provider is None:
        return None
    return HeldRefund(
        refund_id=refund.id,
        account_id=payment.provider_account_id,
        provider=payment.provider,
        provider_refund_id=refund.provider_refund_id,
        created_at=refund.created_at,
    )


async def locked_if_waiting(session: AsyncSession, held: HeldRefund) -> Refund | None:
    locked = await PaymentRepository(session=session).lock_refund(held.refund_id)
    if locked is None or locked.status != "pending" or locked.provider_refund_id != held.provider_refund_id:
        return None  # settled (or confirmed) meanwhile: the webhook or the worker won
    return locked


async def locked_for_answer(session: AsyncSession, held: HeldRefund) -> Refund | None:
    """The refund, locked, if the provider's answer about it is still to record: waiting as it was
    read (``locked_if_waiting``), or failed since without the provider's word (the tenant resolved
    it ``failed`` while the provider was being asked, or another asking found "no such refund"),
    which that answer overrules as its webhook's would (``overrule``). None when anything else
    settled it meanwhile (the webhook, the worker, the provider's own word)."""
    locked = await PaymentRepository(session=session).lock_refund(held.refund_id)
    if locked is None or locked.provider_refund_id != held.provider_refund_id:
        return None
    if locked.status == "pending" or (locked.status == "failed" and locked.failure_code in WITHOUT_PROVIDERS_WORD):
        return locked
    return None


async def overrule(session: AsyncSession, locked: Refund, found: RefundResult | None) -> Recorded:
    """The provider's answer about a refund failed without its word since it was read, recorded by
    the webhook's rule (``refund_settlement.overruling``): ``succeeded`` counts the refund again if
    its payment has room for it, else it stays failed and is shown to the tenant (the customer got
    more back than was paid); ``failed`` makes the failure the provider's, final. Before 2026-11-29
    the answer was dropped, and only a webhook still counted the money that went back.

    Nothing settled (pending, none found), or a refund that says it is another (another refund,
    payment or amount), or one another refund records (from its webhook, counted there): the
    failure stands."""
    if found is None or found.status == "pending":
        return "unchanged"
    payment = await session.get(Payment, locked.payment_id)
    if unlike(found, locked, payment) is not None:
        return "unchanged"
    if await PaymentRepository(session=session).other_refund(found.provider_refund_id, than=locked.id) is not None:
        return "unchanged"
    await overruling(session, locked, found)
    return "settled" if locked.action_required is None else "action_required"


async def record_answer(
    session: AsyncSession, held: HeldRefund, found: RefundResult | None, *, now: datetime, flag_after: timedelta
) -> Recorded:
    """A settled answer, as the webhook would have recorded it; anything else, that it waits. A
    refund the tenant resolved ``failed`` while the provider was asked takes the answer as its
    webhook would (``overrule``)."""
    locked = await locked_for_answer(session, held)
    if locked is None:
        return "unchanged"
    if locked.status != "pending":
        return await overrule(session, locked, found)
    if found is not None and found.status != "pending":
        await refund_settled(session, locked, found.status, failure_message=found.failure_message)
        return "settled"
    why = f"{held.provider} still holds it as pending" if found is not None else cannot_read(held)
    return await _waiting(session, locked, held, now=now, flag_after=flag_after, why=why)


async def no_answer(
    session: AsyncSession, held: HeldRefund, *, now: datetime, flag_after: timedelta, why: str
) -> Recorded:
    locked = await locked_if_waiting(session, held)
    if locked is None:
        return "unchanged"
    return await _waiting(session, locked, held, now=now, flag_after=flag_after, why=why)


async def _waiting(
    session: AsyncSession, locked: Refund, held: HeldRefund, *, now: datetime, flag_after: timedelta, why: str
) -> Recorded:
    message = waiting_too_long(held, why)
    flagged = await attention.wait_or_flag(
        session, locked, created_at=held.created_at, now=now, flag_after=flag_after, message=message
    )
    return "action_required" if flagged else "unchanged"


async def require_action(session: AsyncSession, held: HeldRefund, message: str) -> Recorded:
    locked = await locked_if_waiting(session, held)
    flagged = locked is not None and await attention.flag(session, locked, message)
    return "action_required" if flagged else "unchanged"


def cannot_read(held: HeldRefund) -> str:
    return f"{held.provider} cannot say how it stands now: it has no refund it can read by that id"


def unanswered(held: HeldRefund | LostRefund, reason: str) -> str:
    return f"{held.provider} could not be asked: {reason}"


def cannot_ask(held: HeldRefund | LostRefund) -> str:
    return f"{held.provider} accounts cannot be asked about a refund"


def waiting_too_long(held: HeldRefund, why: str) -> str:
    since = held.created_at.isoformat(timespec="seconds")
    return (
        f"{held.provider} took this refund ({held.provider_refund_id}) as pending, and nothing has settled it since "
        f"{since} ({why}). Its amount stays reserved on the payment until it settles. Check it at {held.provider}, "
        f"then settle it with POST /v1/refunds/{held.refund_id}/resolve; its webhook still settles it if it comes."
    )


def account_gone(held: HeldRefund | LostRefund) -> str:
    return (
        f"the {held.provider} account this refund went through (provider account {held.account_id}) was deleted, so "
        f"{held.provider} cannot be asked about it. Check at {held.provider}, then settle it with "
        f"POST /v1/refunds/{held.refund_id}/resolve."
    )


def never_confirmed(held: HeldRefund | LostRefund, last_error: str | None) -> str:
    return (
        f"billplane could not confirm this refund: its request to {held.provider} failed "
        f"({last_error or 'no answer'}), and an earlier attempt may have refunded. Its amount stays reserved on "
        f"the payment, and billplane will not send it again by itself. Check at {held.provider}, then settle it "
        f"with POST /v1/refunds/{held.refund_id}/resolve (a webhook that names this refund settles it too)."
    )


async def latest_refund_row(session: AsyncSession, refund_id: int) -> OutboxEntry | None:
    """The refund's latest ``refund.create`` row: its request as last sent, and how that ended."""
    query = (
        select(OutboxEntry)
        .where(OutboxEntry.kind == REFUND_KIND, OutboxEntry.object_id == refund_id)
        .order_by(OutboxEntry.id.desc())
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()
