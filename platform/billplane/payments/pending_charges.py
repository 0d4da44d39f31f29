"""Payments a provider holds as pending whose webhook never settled them.

A provider may answer a charge ``pending`` (Stripe's ``processing`` bank debits, the sandbox's
``pending_*`` tokens): it has the charge and its id, and its webhook settles the payment later.
A webhook can be lost, and then the payment, and the invoice it pays, would wait for ever. So
once such a payment has waited ``PendingChecks.every`` (since it was created, then since it was
last asked about), billplane reads the charge by its id from a provider with the
``payment_status`` capability (``charge_status``) and records a settled outcome as the webhook
would have. A provider that cannot be asked (or whose account was deleted) is not guessed at:
after ``PendingChecks.flag_after`` the payment is shown to the tenant (``action_required``), who
settles it with ``POST /v1/payments/{id}/resolve`` after checking at the provider.

Each step re-reads the payment under its row lock: the webhook may have settled it meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from billplane.payments import reconcile, settlement
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


async def record_status(
    session: AsyncSession, charge: PendingCharge, found: ChargeResult | None, now: datetime
) -> reconcile.Recorded:
    """Record what the provider said about the charge now: its outcome, or that it still waits
    (asked again no sooner than ``PendingChecks.every``), or that it does not know the charge
    (shown to the tenant; nothing is settled on a guess)."""
    locked = await _locked_if_pending(session, charge)
    if locked is None:
        return "unchanged"
    if found is None:
        flagged = await reconcile.flag(session, locked, unknown_at_provider(charge))
        return "action_required" if flagged else "unchanged"
    if found.status == "pending":
        locked.provider_checked_at = now
        await session.flush()
        return "unchanged"
    # The provider id stays the one billplane holds: the provider was asked about exactly that one.
    await settlement.payment_settled(session, locked, found.status, found.failure_code, found.failure_message)
    return "settled"


async def checked(session: AsyncSession, charge: PendingCharge, now: datetime) -> None:
    """Asked about (or not askable yet): the scan passes it over for ``PendingChecks.every``."""
    locked = await _locked_if_pending(session, charge)
    if locked is not None:
        locked.provider_checked_at = now
        await session.flush()


async def require_action(session: AsyncSession, charge: PendingCharge, message: str) -> bool:
    locked = await _locked_if_pending(session, charge)
    return locked is not None and await reconcile.flag(session, locked, message)


def unknown_at_provider(charge: PendingCharge) -> str:
    return (
        f"{charge.provider} answered this charge as pending ({charge.provider_payment_id}), but cannot say how it "
        f"stands now: it has no charge it can read by that id. Check at {charge.provider}, then settle it with "
        f"POST /v1/payments/{charge.payment_id}/resolve. billplane will not charge it again by itself."
    )


def cannot_ask(charge: PendingCharge, since: str) -> str:
    return (
        f"{charge.provider} holds this charge ({charge.provider_payment_id}) as pending since {since}, and its "
        f"webhook has not settled it. {charge.provider} accounts cannot be asked about a charge: check it at "
        f"{charge.provider}, then settle it with POST /v1/payments/{charge.payment_id}/resolve (its webhook still "
        "settles it if it arrives first)."
    )


def account_gone(charge: PendingCharge) -> str:
    return (
        f"{charge.provider} holds this charge ({charge.provider_payment_id}) as pending, and the account it went "
        f"through (provider account {charge.account_id}) was deleted, so {charge.provider} cannot be asked about "
        f"it. Check at {charge.provider}, then settle it with POST /v1/payments/{charge.payment_id}/resolve."
    )
