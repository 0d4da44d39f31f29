"""Outbox operations that move money: charge a pending payment, send a pending refund.

Like every operation (``billplane.sync.operations``): read in a short transaction, call the
provider outside any transaction with the row's idempotency key (a retry after a crash charges
once), record the answer in ``attempt.finish()``. A provider that refuses the request outright
(``ProviderError``: an unknown payment method, a payment that cannot be refunded) settles the
payment or refund as failed with its reason; transient errors are retried by the performer.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.customers.models import ProviderCustomer
from billplane.invoices.models import Invoice
from billplane.payments import settlement
from billplane.payments.models import Payment, PaymentMethod, Refund
from billplane.payments.refund_settlement import refund_answered, refund_settled
from billplane.payments.repository import PaymentRepository
from billplane.plugins.contract import ChargeRequest, ChargeResult, RefundRequest, RefundResult
from billplane.plugins.errors import ProviderError, RetryableProviderError
from billplane.subscriptions.models import Subscription
from billplane.sync.attempt import Attempt
from billplane.sync.repository import OutboxRepository

# Where a payment keeps the billplane id of the payment method it charges (payments have no column for it).
PAYMENT_METHOD_KEY = "payment_method_id"
# Set ("true") when the tenant named that method on ``/pay``: a charge never sent whose named method
# was detached fails, instead of going to another the tenant did not choose.
PAYMENT_METHOD_NAMED_KEY = "payment_method_named"
# And the provider's customer its charge was first sent for: a retry sends, and reconciliation asks
# about, the same one, even if the customer was created again at the provider since (a new id).
PROVIDER_CUSTOMER_KEY = "provider_customer_id"
# The failure code of a charge whose method was detached before it was sent, with no other to take.
PAYMENT_METHOD_DETACHED = "payment_method_detached"


async def charge_request(session: AsyncSession, payment: Payment, account_id: int) -> ChargeRequest:
    """What ``charge`` is sent for the payment; reconciliation asks the provider with the same request."""
    method_id = payment.metadata_.get(PAYMENT_METHOD_KEY)
    token = None
    if method_id is not None:
        token = await session.scalar(
            select(PaymentMethod.provider_payment_method_id).where(PaymentMethod.id == int(method_id))
        )
    customer = payment.metadata_.get(PROVIDER_CUSTOMER_KEY) or await session.scalar(
        select(ProviderCustomer.provider_customer_id).where(
            ProviderCustomer.customer_id == payment.customer_id, ProviderCustomer.provider_account_id == account_id
        )
    )
    number = None
    if payment.invoice_id is not None:
        number = await session.scalar(select(Invoice.number).where(Invoice.id == payment.invoice_id))
    return ChargeRequest(
        payment_id=payment.id,
        amount=payment.amount,
        currency=payment.currency,
        payment_method=token,
        provider_customer_id=customer,
        description=f"Invoice {number}" if number else None,
    )


async def charge_payment(attempt: Attempt) -> None:
    """``payment.charge``: charge a pending payment that has not reached the provider yet."""
    request, unchargeable, called_before = await _to_send(attempt)
    if request is None:  # settled or charged already (a duplicate job, a webhook first), or unchargeable
        async with attempt.finish(called=False) as session:
            if unchargeable is not None:
                await _settled_unsent(session, attempt.row.object_id, unchargeable)
            return
    outcome: ChargeResult | ProviderError
    try:
        outcome = await attempt.account.adapter.charge(request, idempotency_key=attempt.key())
    except RetryableProviderError:
        raise
    except ProviderError as exc:
        if called_before:
            # An earlier call ended without an answer (a timeout, a 5xx, a worker that died during
            # it): the charge may have been made then, and a refusal now (a revoked key, a request
            # that no longer matches its idempotency key) does not say it was not. Raised, the row
            # fails with the payment still pending, and reconciliation asks the provider with the
            # same key (docs/concepts/payment-reconciliation.md) instead of dunning charging again.
            raise
        outcome = exc
    async with attempt.finish() as session:
        locked = await PaymentRepository(session=session).lock(request.payment_id)
        if locked is None or locked.status != "pending":
            return
        if isinstance(outcome, ProviderError):
            await settlement.payment_settled(session, locked, "failed", outcome.code, outcome.message)
            return
        locked.provider_payment_id = outcome.provider_payment_id
        await settlement.payment_settled(session, locked, outcome.status, outcome.failure_code, outcome.failure_message)


async def _to_send(attempt: Attempt) -> tuple[ChargeRequest | None, str | None, int]:
    """(what to send, or None; why it cannot be sent, or None; the calls that may have been made
    before), with the call counted, in a transaction committed before the call."""
    request = None
    unchargeable = None  # a charge never sent whose method was detached, with no other to take
    called_before = attempt.row.attempts  # an attempt that ended without an answer, counted
    async with attempt.read() as session:
        payment = await session.get(Payment, attempt.row.object_id)
        if payment is not None and payment.status == "pending" and payment.provider_payment_id is None:
            attempt.refuse_forgotten_key(then="reconciliation asks the provider")
            if not (attempt.row.calls or attempt.row.attempts):
                unchargeable = await _method_moved_if_detached(session, payment, attempt.account.id)
            if unchargeable is None:
                request = await charge_request(session, payment, attempt.account.id)
                if request.provider_customer_id and PROVIDER_CUSTOMER_KEY not in payment.metadata_:
                    payment.metadata_ = {**payment.metadata_, PROVIDER_CUSTOMER_KEY: request.provider_customer_id}
                # Committed before the call: a worker that dies during it leaves the count behind.
                called_before += await OutboxRepository(session).count_call(attempt.row)
    return request, unchargeable, called_before


async def _method_moved_if_detached(session: AsyncSession, payment: Payment, account_id: int) -> str | None:
    """A charge never sent whose payment method was detached since it was queued goes to the method
    a charge queued now would take: the subscription's, else the customer's default at the
    account; unless the tenant named the method on ``/pay``. Only before its first call: once
    called, a retry must send what was sent (the same idempotency key), and reconciliation asks
    about it. Returns why it cannot be charged (the method was named, or there is no other), or None."""
    method_id = payment.metadata_.get(PAYMENT_METHOD_KEY)
    if method_id is None:
        return None
    method = await session.get(PaymentMethod, int(method_id))
    if method is not None and method.detached_at is None:
        return None
    if payment.metadata_.get(PAYMENT_METHOD_NAMED_KEY) == "true":
        return f"payment method {method_id}, named for this charge, was detached before the charge was sent"
    methods = PaymentRepository(session=session)
    pinned = None
    if payment.invoice_id is not None:
        pinned = await session.scalar(
            select(Subscription.payment_method_id)
            .join(Invoice, Invoice.subscription_id == Subscription.id)
            .where(Invoice.id == payment.invoice_id)
        )
    replacement = None if pinned is None else await methods.usable_method(pinned, payment.customer_id)
    if replacement is None or replacement.provider_account_id != account_id:
        replacement = await methods.default_method(payment.customer_id, account_id)
    if replacement is None:
        return (
            f"payment method {method_id} was detached before the charge was sent, and the customer has no "
            f"default payment method at provider account {account_id} to charge instead"
        )
    payment.metadata_ = {**payment.metadata_, PAYMENT_METHOD_KEY: str(replacement.id)}
    return None


async def _settled_unsent(session: AsyncSession, payment_id: int, why: str) -> None:
    locked = await PaymentRepository(session=session).lock(payment_id)
    if locked is not None and locked.status == "pending":
        await settlement.payment_settled(session, locked, "failed", PAYMENT_METHOD_DETACHED, why)


def refund_request(refund: Refund, provider_payment_id: str) -> RefundRequest:
    """What the refund's provider is asked to refund (and asked about, if the answer is lost)."""
    return RefundRequest(
        refund_id=refund.id,
        provider_payment_id=provider_payment_id,
        amount=refund.amount,
        currency=refund.currency,
        reason=refund.reason,
    )


async def send_refund(attempt: Attempt) -> None:
    """``refund.create``: ask the provider to refund; the amount was reserved when the refund was made."""
    request = None
    called_before = attempt.row.attempts  # an attempt that ended without an answer, counted
    async with attempt.read() as session:
        refund = await session.get(Refund, attempt.row.object_id)
        if refund is not None and refund.status == "pending" and refund.provider_refund_id is None:
            payment = await session.get(Payment, refund.payment_id)
            if payment is not None and payment.provider_payment_id is not None:
                attempt.refuse_forgotten_key(then="reconciliation asks the provider")
                request = refund_request(refund, payment.provider_payment_id)
                # Committed before the call: a worker that dies during it leaves the count behind.
                called_before += await OutboxRepository(session).count_call(attempt.row)
    if request is None:
        async with attempt.finish(called=False):
            return
    result: RefundResult | ProviderError
    try:
        result = await attempt.account.adapter.refund(request, idempotency_key=attempt.key())
    except RetryableProviderError:
        raise
    except ProviderError as exc:
        if called_before:
            # As for a charge: an earlier call may have refunded, and a refusal now (a revoked key,
            # an expired idempotency key, "already refunded") does not say it did not. Failing the
            # refund would give its amount back to be refunded again. Raised, the row fails and the
            # refund stays pending, its amount reserved, until the provider's webhook settles it.
            raise
        result = exc  # refused: the refund failed and its amount goes back to the payment
    async with attempt.finish() as session:
        repository = PaymentRepository(session=session)
        locked = await repository.lock_refund(request.refund_id)
        if locked is None or locked.status != "pending":
            return
        if isinstance(result, ProviderError):
            await refund_settled(session, locked, "failed", failure_code=result.code, failure_message=result.message)
            return
        await refund_answered(session, locked, result)
