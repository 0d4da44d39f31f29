"""Appliers for events about invoices, payments and refunds a provider reports.

A provider that bills a subscription itself (Stripe) issues its own invoices and collects them:
billplane mirrors each invoice once per (account, provider invoice id) and records payments and
refunds it did not start, when the event says whose they are. A refund an event does not name may
still be billplane's own, whose answer was lost (``_unnamed_refund``). Settled money only moves forward:
a succeeded payment never goes back to failed, whatever order events arrive in. A succeeded refund
does only when the provider fails it later (Stripe: the card was closed since), which no earlier
event can undo: a failed refund is final, unless its "failed" was the tenant's word
(``billplane.payments.refund_settlement``). A payment that settles also settles the invoice
billplane issued for it (``billplane.payments.settlement``).
"""

from __future__ import annotations

import msgspec
from sqlalchemy import and_, exists, or_, select

from billplane.events import types
from billplane.events.changes import changed
from billplane.events.emit import emit
from billplane.invoices.failures import PaymentFailure, payment_failed
from billplane.invoices.models import Invoice
from billplane.invoices.schemas import Invoice as InvoiceView
from billplane.money.currencies import EXPONENTS
from billplane.payments import attention, reconcile, settlement
from billplane.payments.models import WITHOUT_PROVIDERS_WORD, Payment, Refund
from billplane.payments.refund_settlement import overruling, refund_settled
from billplane.plugins.contract import ChargeResult, ChargeStatus, ProviderEvent, ProviderInvoice, RefundResult
from billplane.sync.models import OutboxEntry
from billplane.webhooks import provider_state
from billplane.webhooks.models import StoredEvent
from billplane.webhooks.object_events import Outcome, stale
from billplane.webhooks.repository import EventRepository

# PostgreSQL's bigint, what every amount column is: no payment, so no refund, is more.
_LARGEST_AMOUNT = 2**63 - 1
_CHECK_IT = ": not applied; check the refund at the provider"


def is_currency(code: str | None) -> bool:
    # The tables check the code's shape: an event failing it would stop its job, not only itself.
    return code is not None and code in EXPONENTS


async def _owner(
    events: EventRepository, account_id: int, subscription_id: str | None, customer_id: str | None
) -> tuple[int, int | None] | None:
    """(customer id, subscription id) of what the provider names, or None if billplane knows neither."""
    if subscription_id is not None:
        subscription = await events.subscription(account_id, subscription_id)
        if subscription is not None:
            return subscription.customer_id, subscription.id
    if customer_id is not None:
        local = await events.customer_id_at(account_id, customer_id)
        if local is not None:
            return local, None
    return None


async def _new_mirror(
    events: EventRepository, row: StoredEvent, provider_invoice_id: str, state: ProviderInvoice
) -> Invoice | Outcome:
    """The local copy of a provider's invoice seen for the first time, added; or why there is none."""
    account = row.provider_account_id
    owner = await _owner(events, account, state.provider_subscription_id, state.provider_customer_id)
    if owner is None:
        return "ignored", "the invoice's subscription and customer are unknown at this account"
    if owner[1] is not None and not events.bills_subscriptions(row.provider):
        # billplane invoices this provider's subscriptions itself: mirrored, a period would be billed twice.
        return "ignored", f"the {row.provider} provider does not bill subscriptions: billplane invoices them"
    invoice = Invoice(
        customer_id=owner[0],
        subscription_id=owner[1],
        currency=state.currency,
        status=state.status,
        provider=row.provider,
        provider_account_id=account,
        provider_invoice_id=provider_invoice_id,
    )
    events.add(invoice)
    return invoice


async def invoice_changed(events: EventRepository, row: StoredEvent, event: ProviderEvent) -> Outcome:
    state = event.invoice
    if state is None:
        return "ignored", "the event carries no invoice"
    if not is_currency(state.currency):
        return "ignored", f"the invoice's currency {state.currency!r} is not an ISO 4217 code"
    account = row.provider_account_id
    invoice = await events.invoice(account, event.provider_object_id)
    before: InvoiceView | None = None  # as the API showed it; None: mirrored now
    if invoice is None:
        mirror = await _new_mirror(events, row, event.provider_object_id, state)
        if isinstance(mirror, tuple):
            return mirror
        invoice = mirror
    elif stale(invoice, event):
        return "ignored", "older than the last event applied to this invoice"
    elif provider_state.invoice_goes_back(invoice.status, state.status):
        back = f"the invoice is {invoice.status} already: a provider's invoice never goes back to {state.status}"
        return "ignored", back
    else:
        before = InvoiceView.of(invoice)
    provider_state.record_invoice(invoice, state, event.occurred_at)
    invoice.provider_event_at = event.occurred_at
    failed = event.type == "invoice.payment_failed"
    await _mirrored(events, invoice, before, failed=failed)
    if failed:
        payment_id = None
        if state.provider_payment_id is not None:
            failure = ChargeResult(
                provider_payment_id=state.provider_payment_id,
                status="failed",
                failure_code=state.failure_code,
                failure_message=state.failure_message,
                amount=state.amount_due or state.total,
                currency=state.currency,
            )
            await _record_payment(events, row, failure, invoice.customer_id, invoice.id)
            payment = await events.payment(account, state.provider_payment_id)
            payment_id = None if payment is None else payment.id
        # Every failed attempt the provider reports, as for billplane's own invoices: the payment's
        # event first (when it changed), then the invoice's with why it failed.
        why = PaymentFailure(code=state.failure_code, message=state.failure_message, payment_id=payment_id)
        shown = payment_failed(invoice, why)
        await emit(events.session, types.INVOICE_PAYMENT_FAILED, types.INVOICE_OBJECT, invoice.id, shown)
    return "applied", None


async def _mirrored(events: EventRepository, invoice: Invoice, before: InvoiceView | None, *, failed: bool) -> None:
    """The events of what the provider's word changed in the mirrored ``invoice``: ``invoice.created``
    when it is new, then the event of the status it entered (``types.invoice_change``), else
    ``invoice.updated`` if the API shows it changed (a payment failure has its own event instead)."""
    await events.flush()
    await events.session.refresh(invoice)  # what the database set (id, amount_due, updated_at)
    after = InvoiceView.of(invoice)
    changes = [] if before is not None else [types.INVOICE_CREATED]
    status_change = types.invoice_change(None if before is None else before.status, after.status)
    if status_change is not None:
        changes.append(status_change)
    elif before is not None and not failed and changed(before, after):
        changes.append(types.INVOICE_UPDATED)
    for change in changes:
        await emit(events.session, change, types.INVOICE_OBJECT, invoice.id, after)


async def _record_payment(
    events: EventRepository, row: StoredEvent, result: ChargeResult, customer_id: int, invoice_id: int | None
) -> Outcome:
    payment = await events.payment(row.provider_account_id, result.provider_payment_id)
    if payment is None:
        if result.amount is None or result.amount < 0 or not is_currency(result.currency):
            return "ignored", "an unknown payment without a valid amount and currency"
        payment = Payment(
            customer_id=customer_id,
            invoice_id=invoice_id,
            amount=result.amount,
            currency=result.currency,
            status=result.status,
            provider=row.provider,
            provider_account_id=row.provider_account_id,
            provider_payment_id=result.provider_payment_id,
        )
        events.add(payment)
    elif payment.status in {"succeeded", "canceled"} or (payment.status == "failed" and result.status != "succeeded"):
        # A provider may retry a failed payment and succeed (Stripe reuses the payment intent);
        # nothing turns a success back. A canceled payment is a duplicate whose charge another
        # payment records (recorded_first): its late webhook must not count the money again.
        return "ignored", f"the payment is already {payment.status}"
    # The payment's events, and its invoice when billplane issued it (paid, or one more failed attempt).
    await settlement.payment_settled(
        events.session, payment, result.status, result.failure_code, result.failure_message
    )
    return "applied", None


async def payment_settled(events: EventRepository, row: StoredEvent, event: ProviderEvent) -> Outcome:
    status: ChargeStatus = "succeeded" if event.type == "payment.succeeded" else "failed"
    reported = event.payment or ChargeResult(provider_payment_id=event.provider_object_id, status=status)
    result = msgspec.structs.replace(reported, status=status)  # the event type is what settled it
    known = await events.payment(row.provider_account_id, result.provider_payment_id)
    if known is not None:
        return await _record_payment(events, row, result, known.customer_id, known.invoice_id)
    unanswered = await reconcile.charge_reported(events.session, row.provider_account_id, result)
    if unanswered is not None:  # billplane's own charge, whose answer was lost: settle it, not a second payment
        if unanswered.status == "failed" and result.status != "succeeded":
            return "ignored", "the payment is already failed"  # its invoice counted that attempt once
        unanswered.provider_payment_id, unanswered.action_required = result.provider_payment_id, None
        await settlement.payment_settled(
            events.session, unanswered, result.status, result.failure_code, result.failure_message
        )
        return "applied", None
    invoice = None
    if result.provider_invoice_id is not None:
        invoice = await events.invoice(row.provider_account_id, result.provider_invoice_id)
    if invoice is not None:
        return await _record_payment(events, row, result, invoice.customer_id, invoice.id)
    owner = await _owner(events, row.provider_account_id, result.provider_subscription_id, result.provider_customer_id)
    if owner is None:
        return "ignored", "no local payment, invoice, subscription or customer matches this payment"
    return await _record_payment(events, row, result, owner[0], None)


async def refund_changed(events: EventRepository, row: StoredEvent, event: ProviderEvent) -> Outcome:
    result = event.refund
    if result is None:
        return "ignored", "the event carries no refund"
    if result.amount is not None and result.amount > _LARGEST_AMOUNT:
        # Looked up by it (refund_reported), the database would refuse it on every attempt.
        return "ignored", "the refund's amount is more than any payment can be: check the refund at the provider"
    refund = await events.refund(row.provider_account_id, result.provider_refund_id)
    if refund is not None:
        return await _known_refund(events, refund, result)
    unanswered = await events.refund_reported(row.provider_account_id, result)
    if unanswered is not None:  # billplane's own refund, whose answer was lost: settle it, not a second one
        return await _answer_lost(events, unanswered, result)
    if result.billplane_refund_id is None:
        unnamed = await _unnamed_refund(events, row, result)
        if unnamed is not None:
            return unnamed
    return await _new_refund(events, row, result)


async def _unnamed_refund(events: EventRepository, row: StoredEvent, result: RefundResult) -> Outcome | None:
    """A refund the event does not name (PayPal's ``PAYMENT.SALE.REFUNDED`` has no field for the
    ``invoice_id`` billplane sends) may still be billplane's own, whose every answer was lost:
    recorded as a new one, its money would count twice on the payment. It is the one unanswered
    refund of that payment and amount (``_unanswered``) when there is exactly one. With several,
    which one it is would be a guess: the event waits (deferred) until their answers come, or the
    tenant resolves them (``POST /v1/refunds/{id}/resolve``: they are shown to the tenant as any
    refund nothing settled is), and then finds one, or none. None when there is none: the event's
    refund is one of its own (a dashboard's)."""
    candidates = await _unanswered(events, row.provider_account_id, result)
    if not candidates:
        return None
    if len(candidates) == 1:
        return await _answer_lost(events, candidates[0], result)
    ids = ", ".join(str(refund.id) for refund in candidates)
    return (
        "deferred",
        f"it may be any of billplane's unanswered refunds {ids} of that amount: it waits for their answers",
    )


async def _unanswered(events: EventRepository, account_id: int, result: RefundResult) -> list[Refund]:
    """billplane's refunds of the event's payment and amount that were sent (a call counted on their
    ``refund.create`` row) and never answered (no provider id): pending, or failed without the
    provider's word (``refund_reported``'s). A refund never sent cannot be the one reported. Locked."""
    if result.provider_payment_id is None or result.amount is None:
        return []
    sent = exists().where(
        OutboxEntry.kind == "refund.create",
        OutboxEntry.object_id == Refund.id,
        OutboxEntry.provider_account_id == account_id,
        OutboxEntry.calls > 0,
    )
    query = (
        select(Refund)
        .join(Payment, Payment.id == Refund.payment_id)
        .where(
            Payment.provider_account_id == account_id,
            Payment.provider_payment_id == result.provider_payment_id,
            Refund.provider_refund_id.is_(None),
            Refund.amount == result.amount,
            or_(
                Refund.status == "pending",
                and_(Refund.status == "failed", Refund.failure_code.in_(WITHOUT_PROVIDERS_WORD)),
            ),
            sent,
        )
        .order_by(Refund.id)
        .with_for_update(of=Refund)
    )
    if result.currency is not None:
        query = query.where(Refund.currency == result.currency)
    return list((await events.session.execute(query)).scalars())


async def _answer_lost(events: EventRepository, refund: Refund, result: RefundResult) -> Outcome:
    other = _unlike(refund, result)  # it agrees on the amount already
    if other is not None:
        return "ignored", f"{other} it names is {_money(refund.amount, refund.currency)}{_CHECK_IT}"
    if refund.status == "pending":
        await refund_settled(
            events.session, refund, result.status, result.provider_refund_id, failure_message=result.failure_message
        )
        return "applied", None
    return await overruling(events.session, refund, result)


async def _known_refund(events: EventRepository, refund: Refund, result: RefundResult) -> Outcome:
    """A refund billplane holds by the provider's id. A failed one gives back the amount its payment
    counted as refunded when it was made. Beyond pending, only the provider's word about money that
    moved changes it: a refund that failed after it succeeded (Stripe: the card was closed since),
    or one failed without its word (the tenant's, or "no such refund") that it refunded after all.
    An event that gives the refund another amount or currency is not about this money."""
    other = _unlike(refund, result)
    if other is not None:
        return "ignored", f"{other} with its id is {_money(refund.amount, refund.currency)}{_CHECK_IT}"
    if refund.status == "pending":
        await refund_settled(events.session, refund, result.status, failure_message=result.failure_message)
        return "applied", None
    if refund.status == "succeeded" and result.status == "failed":
        await refund_settled(events.session, refund, "failed", failure_message=result.failure_message)
        return "applied", None
    if refund.status == "failed" and refund.failure_code in WITHOUT_PROVIDERS_WORD:
        return await overruling(events.session, refund, result)
    return "ignored", f"the refund is already {refund.status}"


def _unlike(refund: Refund, result: RefundResult) -> str | None:
    """The start of the reason to ignore an event about billplane's ``refund`` that gives it another
    amount or currency (what the event leaves out contradicts nothing); None when it agrees.
    Settled on such an event, the refund would stand for money other than what moved."""
    if result.amount in {None, refund.amount} and result.currency in {None, refund.currency}:
        return None
    amount = refund.amount if result.amount is None else result.amount
    reported = _money(amount, result.currency or refund.currency)
    return f"the provider reports this refund as {reported}, and billplane's refund {refund.id}"


def _money(amount: int, currency: str) -> str:
    return f"{amount} {currency}"


async def _new_refund(events: EventRepository, row: StoredEvent, result: RefundResult) -> Outcome:
    if result.provider_payment_id is None or result.amount is None or result.amount <= 0:
        return "ignored", "an unknown refund without its payment and amount"
    if result.currency is not None and not is_currency(result.currency):  # None: its payment's
        return "ignored", f"the refund's currency {result.currency!r} is not an ISO 4217 code"
    payment = await _refunded_payment(events, row.provider_account_id, result.provider_payment_id, result.currency)
    if isinstance(payment, str):
        return "ignored", payment
    if payment.status != "succeeded":
        return await _refund_of_unpaid(events, payment, result, result.amount)
    if result.status != "failed" and payment.refunded_amount + result.amount > payment.amount:
        return "ignored", "the refund would exceed what was paid; check the payment at the provider"
    events.add(
        Refund(
            payment_id=payment.id,
            amount=result.amount,
            currency=payment.currency,
            status=result.status,
            provider_refund_id=result.provider_refund_id,
        )
    )
    if result.status != "failed":
        payment.refunded_amount += result.amount
    return "applied", None


async def _refunded_payment(
    events: EventRepository, account_id: int, provider_payment_id: str, currency: str | None
) -> Payment | str:
    """The payment a refund billplane does not know is of, locked; else why it cannot be recorded."""
    payment = await events.payment(account_id, provider_payment_id)
    if payment is None:
        return "the refunded payment is unknown at this account"
    if currency not in {None, payment.currency}:
        # Amounts in two currencies do not add up: counted, refunded_amount would mean nothing.
        mismatch = f"the refund is in {currency} and its payment in {payment.currency}"
        return f"{mismatch}: not recorded; check the refund at the provider"
    return payment


async def _refund_of_unpaid(events: EventRepository, payment: Payment, result: RefundResult, amount: int) -> Outcome:
    """A refund of a payment that has not succeeded here is never counted: only money paid can go
    back. A failed one moved nothing. One of a pending payment waits (deferred): events arrive in
    any order, and the payment's success, after which the refund is counted, may come next;
    ignored, the refund would be lost. Any other says money went back, or is on its way, from a
    charge billplane holds as failed: the tenant must look (the payment's own success may not
    have reached billplane). A pending payment is not flagged: ``action_required`` would stop
    billplane asking the provider about it (``payments.reconcile_run``), which is what settles it."""
    if result.status == "failed":
        return "ignored", f"a failed refund of a payment that is {payment.status} here: no money moved"
    if payment.status == "pending":
        return "deferred", "the refunded payment is still pending here: check it and the refund at the provider"
    if payment.status != "failed":
        return "ignored", (
            f"the refunded payment is {payment.status} here, not succeeded: not recorded; check the payment and the "
            "refund at the provider"
        )
    refunded = _money(amount, payment.currency)
    await attention.flag(
        events.session,
        payment,
        f"the provider reports refund {result.provider_refund_id} of {refunded} of this payment ({result.status}), "
        "while billplane holds the payment as failed: money may have moved. The refund is not recorded; check the "
        f"payment and the refund at {payment.provider}.",
    )
    return "ignored", f"the refunded payment is failed here: not recorded; payment {payment.id} shows action_required"
