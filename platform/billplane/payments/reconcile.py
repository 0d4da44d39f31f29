"""Reconciling a payment whose charge was never confirmed.

A ``payment.charge`` outbox row that exhausts its attempts leaves its payment ``pending`` with no
provider id: billplane does not know whether the provider charged (a timeout after the provider
charged looks exactly like an unreachable provider). Once the row has failed long enough ago for
any request still in flight to have landed, billplane asks a provider with the ``payment_lookup``
capability (``find_payment``) and records the answer as ``charge_payment`` would have; "no such
charge" settles the payment ``failed`` (``provider_unreachable``) and dunning charges again later
with a new payment and a new key. A provider that cannot be asked is never charged again by
billplane: the payment stays pending, shows why (``action_required``) and says so once
(``payment.action_required``).

Each step re-reads the payment under its row lock: a late worker answer, a webhook or another
reconciler may have settled it meanwhile, and then nothing is recorded twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.payments import attention, recorded_first, settlement
from billplane.payments.models import PROVIDER_UNREACHABLE, Payment
from billplane.payments.operations import charge_request
from billplane.payments.repository import PaymentRepository
from billplane.plugins.contract import ChargeRequest, ChargeResult
from billplane.sync.models import OutboxEntry
from billplane.sync.refs import idempotency_key

UNREACHABLE_CODE = PROVIDER_UNREACHABLE
UNREACHABLE_MESSAGE = "the provider was not reached; no charge was made"
CHARGE_KIND = "payment.charge"
Recorded = Literal["settled", "action_required", "unchanged"]
# The provider's clock and the database's may disagree: search for the charge from a little
# before the payment was created.
CLOCK_MARGIN = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class Unconfirmed:
    """A payment whose charge can be asked about: what ``find_payment`` is given."""

    payment_id: int
    account_id: int
    provider: str
    request: ChargeRequest
    idempotency_key: str
    created_after: datetime


@dataclass(frozen=True, slots=True)
class NotStuck:
    """Why a payment is not (or not yet) for reconciliation; shown to the tenant as a 409."""

    reason: str


async def latest_charge_row(session: AsyncSession, payment_id: int) -> OutboxEntry | None:
    query = (
        select(OutboxEntry)
        .where(OutboxEntry.kind == CHARGE_KIND, OutboxEntry.object_id == payment_id)
        .order_by(OutboxEntry.id.desc())
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def _stuck_reason(session: AsyncSession, payment: Payment) -> tuple[str | None, OutboxEntry | None]:
    if payment.status != "pending":
        return f"the payment is {payment.status}: there is nothing to reconcile", None
    if payment.provider_payment_id is not None:
        return "the provider has the charge and its outcome is pending there; its webhook settles the payment", None
    row = await latest_charge_row(session, payment.id)
    if row is None or payment.provider_account_id is None:
        return "the payment has no charge made through a provider", None
    if row.status != "failed":
        return "the charge is still being attempted (watch the payment for its outcome)", None
    return None, row


async def unconfirmed(
    session: AsyncSession, tenant_id: int, payment: Payment, *, settle_after: timedelta, now: datetime
) -> Unconfirmed | NotStuck:
    """The payment, if its charge failed to be confirmed at least ``settle_after`` ago."""
    reason, row = await _stuck_reason(session, payment)
    if reason is not None or row is None or payment.provider is None:
        return NotStuck(reason or "the payment has no charge made through a provider")
    early = too_early(row, "charge", settle_after=settle_after, now=now)
    if early is not None:
        return NotStuck(early)
    # The account the charge was sent to (the row's): the one to ask, with the same request.
    return Unconfirmed(
        payment_id=payment.id,
        account_id=row.provider_account_id,
        provider=payment.provider,
        request=await charge_request(session, payment, row.provider_account_id),
        idempotency_key=idempotency_key(tenant_id, row.id),
        created_after=payment.created_at - CLOCK_MARGIN,
    )


def too_early(row: OutboxEntry, what: str, *, settle_after: timedelta, now: datetime) -> str | None:
    """Why the provider cannot be asked yet about the ``what`` (charge, refund) whose outbox row
    gave up: a request still in flight could land after its "no such" answer."""
    failed_at = row.done_at or row.created_at
    if failed_at <= now - settle_after:
        return None
    ready = (failed_at + settle_after).isoformat(timespec="seconds")
    return (
        f"the {what}'s last attempt ended at {failed_at.isoformat(timespec='seconds')}; a request still in "
        f"flight could land at the provider meanwhile: ask again after {ready}"
    )


async def _locked_if_stuck(session: AsyncSession, payment_id: int) -> Payment | None:
    locked = await PaymentRepository(session=session).lock(payment_id)
    if locked is None:
        return None
    reason, _ = await _stuck_reason(session, locked)
    return locked if reason is None else None


async def _recorded_elsewhere(session: AsyncSession, payment: Payment, provider_payment_id: str) -> int | None:
    query = select(Payment.id).where(
        Payment.provider_account_id == payment.provider_account_id,
        Payment.provider_payment_id == provider_payment_id,
        Payment.id != payment.id,
    )
    return await session.scalar(query)


async def record_lookup(session: AsyncSession, payment_id: int, found: ChargeResult | None) -> Recorded:
    """Record what the provider answered, as ``charge_payment`` would have.

    ``unchanged``: the payment was settled (or charged) meanwhile, and nothing is recorded.
    The charge found may be another payment's already: the provider's webhook arrived first
    without naming billplane's payment (``billplane_payment_id``) and was recorded as a payment
    billplane did not start. Recording it twice would count the money twice: that payment takes
    this one's invoice (``recorded_first``, ``settled``), or, when it is not the same charge by
    those rules, the tenant is shown both (``action_required``).
    """
    locked = await _locked_if_stuck(session, payment_id)
    if locked is None:
        return "unchanged"
    if found is None:
        await settlement.payment_settled(session, locked, "failed", UNREACHABLE_CODE, UNREACHABLE_MESSAGE)
        return "settled"
    other = await _recorded_elsewhere(session, locked, found.provider_payment_id)
    if other is not None and await recorded_first.adopt(session, locked, other) is not None:
        return "settled"
    if other is not None:
        message = (
            f"the provider has this charge ({found.provider_payment_id}, {found.status}), but billplane already "
            f"recorded it as payment {other} from the provider's webhook, and that payment is on another invoice or "
            "differs from this charge (customer, amount or currency): check both at the provider and settle this "
            "payment's invoice by hand. billplane will not charge it again by itself."
        )
        return "action_required" if await attention.flag(session, locked, message) else "unchanged"
    locked.provider_payment_id = found.provider_payment_id
    locked.action_required = None
    await settlement.payment_settled(session, locked, found.status, found.failure_code, found.failure_message)
    await session.flush()
    return "settled"


async def charge_reported(session: AsyncSession, account_id: int, result: ChargeResult) -> Payment | None:
    """The payment a provider's webhook reports the charge of, when billplane never got the answer
    to that charge (``provider_payment_id`` still unset), locked; else None.

    Such a payment may be pending still, or settled ``failed`` meanwhile without the provider's
    word: no such charge was found, or the tenant resolved it so. A charge that clears after all
    must then settle that payment, so that its invoice (paid again by dunning meanwhile) shows the
    money that moved twice, rather than become a payment on no invoice that nothing flags.

    The charge must name the payment (``billplane_payment_id``) and agree on what the charge was
    sent: account, amount, currency and provider customer. One provider account may serve several
    tenants, whose payment ids overlap, so the id alone proves nothing.
    """
    if result.billplane_payment_id is None:
        return None
    query = (
        select(Payment)
        .where(
            Payment.id == result.billplane_payment_id,
            Payment.provider_account_id == account_id,
            Payment.status.in_(("pending", "failed")),
            Payment.provider_payment_id.is_(None),
        )
        .with_for_update()
    )
    payment = (await session.execute(query)).scalar_one_or_none()
    if payment is None or (payment.amount, payment.currency) != (result.amount, result.currency):
        return None
    sent = await charge_request(session, payment, account_id)
    return payment if sent.provider_customer_id == result.provider_customer_id else None


def cannot_ask(provider: str) -> str:
    return (
        f"billplane could not confirm this charge (every attempt failed to reach {provider}) and {provider} "
        f"accounts cannot be asked about a charge. Check the account at {provider}: a charge that went through "
        "settles this payment when the provider's webhook arrives. billplane will not charge it again by itself."
    )


def account_gone(stuck: Unconfirmed) -> str:
    return (
        f"billplane could not confirm this charge, and the {stuck.provider} account it went through "
        f"(provider account {stuck.account_id}) was deleted, so {stuck.provider} cannot be asked about it. Check "
        f"at {stuck.provider}, then settle it with POST /v1/payments/{stuck.payment_id}/resolve. billplane will "
        "not charge it again by itself."
    )


async def mark_asked(session: AsyncSession, payment_id: int) -> None:
    """The provider could not answer about the charge now: it is asked again on the next run, after
    the tenant's other waiting payments (``provider_checked_at`` orders the job's scan)."""
    locked = await _locked_if_stuck(session, payment_id)
    if locked is not None:
        locked.provider_checked_at = func.now()
        await session.flush()


async def require_action(session: AsyncSession, payment_id: int, message: str) -> bool:
    """Show why the payment waits for the tenant, and say so once (``payment.action_required``)."""
    locked = await _locked_if_stuck(session, payment_id)
    return locked is not None and await attention.flag(session, locked, message)
