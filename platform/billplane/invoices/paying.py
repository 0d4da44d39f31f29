"""Paying an invoice: choose the provider account and payment method, then queue the charge.

The pending payment, its ``payment.created`` event and its ``payment.charge`` outbox row are
written in the request's transaction: all commit or none, and a worker performs the charge with
the row's idempotency key (``billplane.payments.operations``), so a crash anywhere charges the
customer at most once.

Account: the subscription's, else the tenant's default account. Payment method: the one named in
the request, else the subscription's, else the customer's default at that account; it must be the
customer's, still attached, and at that account.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.api.problems import ConflictError, InvalidFieldError
from billplane.billing.clock import live_account_for_clock
from billplane.customers.models import Customer
from billplane.events.emit import emit
from billplane.invoices.models import Invoice
from billplane.payments.models import Payment, PaymentMethod
from billplane.payments.operations import PAYMENT_METHOD_KEY, PAYMENT_METHOD_NAMED_KEY
from billplane.payments.repository import PaymentRepository
from billplane.payments.schemas import Payment as PaymentView
from billplane.provider_accounts.repository import ProviderAccountRepository
from billplane.subscriptions.models import Subscription
from billplane.sync.writer import OutboxWriter

FIELD = "payment_method_id"


async def charge_invoice(
    session: AsyncSession, writer: OutboxWriter, invoice: Invoice, payment_method_id: int | None
) -> Payment:
    """Queue a charge of the invoice's amount due; returns the pending payment."""
    subscription = None
    if invoice.subscription_id is not None:
        subscription = await session.get(Subscription, invoice.subscription_id)
    account_id = await _account_id(writer, subscription)
    account = await ProviderAccountRepository(session, writer.tenant_id).get_live(account_id, for_share=True)
    if account is None:
        raise ConflictError(f"provider account {account_id} no longer exists: connect an account to charge through")
    clock = await session.scalar(select(Customer.test_clock_id).where(Customer.id == invoice.customer_id))
    if live := await live_account_for_clock(session, writer.tenant_id, clock, account.id):
        raise ConflictError(f"the invoice would be charged through {live}")
    method = await _payment_method(session, invoice, subscription, account_id, payment_method_id)
    named = payment_method_id is not None
    payment = Payment(
        customer_id=invoice.customer_id,
        invoice_id=invoice.id,
        amount=invoice.amount_due,
        currency=invoice.currency,
        status="pending",
        provider=account.provider,
        provider_account_id=account.id,
        refunded_amount=0,
        metadata_={PAYMENT_METHOD_KEY: str(method.id)} | ({PAYMENT_METHOD_NAMED_KEY: "true"} if named else {}),
    )
    session.add(payment)
    await session.flush()
    await session.refresh(payment)  # what the database set (created_at), as GET shows it
    await emit(session, "payment.created", "payment", payment.id, PaymentView.of(payment))
    await writer.write("payment.charge", payment.id, [account.id])
    return payment


async def _account_id(writer: OutboxWriter, subscription: Subscription | None) -> int:
    if subscription is not None and subscription.provider_account_id is not None:
        return subscription.provider_account_id
    defaults = await writer.default_account_ids()
    if not defaults:
        raise ConflictError("the tenant has no provider account to charge through: connect one first")
    return defaults[0]


async def _payment_method(
    session: AsyncSession,
    invoice: Invoice,
    subscription: Subscription | None,
    account_id: int,
    requested: int | None,
) -> PaymentMethod:
    payments = PaymentRepository(session=session)
    chosen = requested if requested is not None else (subscription.payment_method_id if subscription else None)
    if chosen is None:
        method = await payments.default_method(invoice.customer_id, account_id)
        if method is None:
            raise InvalidFieldError(
                FIELD, f"the customer has no default payment method at provider account {account_id}: name one"
            )
        return method
    method = await payments.usable_method(chosen, invoice.customer_id)
    origin = "" if requested is not None else " (the subscription's)"
    if method is None:
        raise InvalidFieldError(
            FIELD, f"payment method {chosen}{origin} is not an attached payment method of the customer"
        )
    if method.provider_account_id != account_id:
        raise InvalidFieldError(
            FIELD,
            f"payment method {chosen}{origin} is at provider account {method.provider_account_id}; "
            f"this invoice is charged through account {account_id}",
        )
    return method
