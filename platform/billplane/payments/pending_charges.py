"""Payments a provider holds as pending whose webhook never settled them.

A provider may answer a charge ``pending`` (Stripe's ``processing`` bank debits, the sandbox's
``pending_*`` tokens): it has the charge and its id, and its webhook settles the payment later.
A webhook can be lost, and then the payment, and the invoice it pays, would wait for ever. So
once such a payment has waited ``PendingChecks.every`` (since it was created, then since it was
last asked about), billplane reads the charge by its id from a provider with the
``payment_status`` capability (``charge_status``) and records a settled outcome as the webhook
would have. Nothing else is taken as an outcome: a charge still pending, one the provider cannot
read, a provider that does not answer or cannot be asked at all. Such a payment is asked about
again later, and once it is ``PendingChecks.flag_after`` old it is shown to the tenant
(``action_required``, with the last answer), who settles it with
``POST /v1/payments/{id}/resolve`` after checking at the provider. A bank debit may take days,
so the tenant is not asked sooner; only a deleted account, through which nobody can ask, is
shown at once.

Each step re-reads the payment under its row lock: the webhook may have settled it meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from billplane.payments import attention, reconcile, settlement
from billplane.payments.models import Payment
from billplane.payments.repository import PaymentRepository
from billplane.plugins.contract import ChargeResult


@dataclass(frozen=True, slots=True)
class PendingCharge:
    """A payment whose charge the provider holds as pending: what ``charge_status`` is asked."""

    payment_id: int
    account_id: int
    provider: str
    provider_payment_id: str
    created_at: datetime


def pending_charge(payment: Payment) -> PendingCharge | None:
    if (
        payment.status != "pending"
        or payment.provider_payment_id is None
        or payment.provider_account_id is None
        or payment.provider is None
    ):
        return None
    return PendingCharge(
        payment_id=payment.id,
        account_id=payment.provider_account_id,
        provider=payment.provider,
        provider_payment_id=payment.provider_payment_id,
        created_at=payment.created_at,
    )


async def _locked_if_pending(session: AsyncSession, charge: PendingCharge) -> Payment | None:
    locked = await PaymentRepository(session=session).lock(charge.payment_id)
    if locked is None or pending_charge(locked) != charge:
        return None  # settled (or changed) meanwhile: the webhook won
    return locked


async def record_answer(
    session: AsyncSession, charge: PendingCharge, found: ChargeResult | None, *, now: datetime, flag_after: timedelta
) -> reconcile.Recorded:
    """Record what the provider said about the charge: a settled outcome, as its webhook would
    have; anything else, that it still waits (``no_answer``)."""
    locked = await _locked_if_pending(session, charge)
    if locked is None:
        return "unchanged"
    if found is not None and found.status != "pending":
        # The provider id stays the one billplane holds: the provider was asked about exactly that one.
        await settlement.payment_settled(session, locked, found.status, found.failure_code, found.failure_message)
        return "settled"
    why = still_pending(charge) if found is not None else cannot_read(charge)
    return await _waiting(session, locked, charge, now=now, flag_after=flag_after, why=why)


async def no_answer(
    session: AsyncSession, charge: PendingCharge, *, now: datetime, flag_after: timedelta, why: str
) -> reconcile.Recorded:
    """No settled answer (``why``): asked again after ``PendingChecks.every``, and once the
    payment is ``flag_after`` old, shown to the tenant instead."""
    locked = await _locked_if_pending(session, charge)
    if locked is None:
        return "unchanged"
    return await _waiting(session, locked, charge, now=now, flag_after=flag_after, why=why)


async def _waiting(
    session: AsyncSession, locked: Payment, charge: PendingCharge, *, now: datetime, flag_after: timedelta, why: str
) -> reconcile.Recorded:
    message = waiting_too_long(charge, why)
    flagged = await attention.wait_or_flag(
        session, locked, created_at=charge.created_at, now=now, flag_after=flag_after, message=message
    )
    return "action_required" if flagged else "unchanged"


async def require_action(session: AsyncSession, charge: PendingCharge, message: str) -> bool:
    locked = await _locked_if_pending(session, charge)
    return locked is not None and await attention.flag(session, locked, message)


def still_pending(charge: PendingCharge) -> str:
    return f"{charge.provider} still holds it as pending"


def cannot_read(charge: PendingCharge) -> str:
    return f"{charge.provider} cannot say how it stands now: it has no charge it can read by that id"


def unanswered(charge: PendingCharge, reason: str) -> str:
    return f"{charge.provider} could not be asked: {reason}"


def cannot_ask(charge: PendingCharge) -> str:
    return f"{charge.provider} accounts cannot be asked about a charge"


def waiting_too_long(charge: PendingCharge, why: str) -> str:
    since = charge.created_at.isoformat(timespec="seconds")
    return (
        f"{charge.provider} took this charge ({charge.provider_payment_id}) as pending, and nothing has settled it "
        f"since {since}: {why}. Check it at {charge.provider}, then settle it with POST /v1/payments/"
        f"{charge.payment_id}/resolve (its webhook still settles it if it arrives first). billplane will not "
        "charge it again by itself."
    )


def account_gone(charge: PendingCharge) -> str:
    return (
        f"{charge.provider} holds this charge ({charge.provider_payment_id}) as pending, and the account it went "
        f"through (provider account {charge.account_id}) was deleted, so {charge.provider} cannot be asked about "
        f"it. Check at {charge.provider}, then settle it with POST /v1/payments/{charge.payment_id}/resolve."
    )
