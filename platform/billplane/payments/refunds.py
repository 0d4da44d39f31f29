"""Creating refunds. Never commits: the request owns the transaction.

The refund's amount is reserved on its payment (``refunded_amount``) when the refund is created,
under the payment's row lock, so two concurrent refunds can never together exceed what was paid
(the table's check refuses it too); a refund that fails gives its amount back. The pending refund
and its ``refund.create`` outbox row commit together; a worker asks the provider.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property

from sqlalchemy.ext.asyncio import AsyncSession

from billplane.api.problems import ConflictError, InvalidFieldError
from billplane.events.emit import emit
from billplane.payments.models import Refund
from billplane.payments.repository import PaymentRepository
from billplane.payments.schemas import Refund as RefundView
from billplane.payments.schemas import RefundCreate
from billplane.provider_accounts.repository import ProviderAccountRepository
from billplane.sync.writer import OutboxWriter


class RefundService:
    def __init__(self, session: AsyncSession, writer: Callable[[], OutboxWriter]) -> None:
        self.session = session
        self.payments = PaymentRepository(session=session)
        self._writer = writer

    @cached_property
    def writer(self) -> OutboxWriter:
        return self._writer()

    async def create(self, data: RefundCreate) -> Refund:
        payment = await self.payments.lock(data.payment_id)
        if payment is None:  # another tenant's payment looks exactly like one that does not exist
            raise InvalidFieldError("payment_id", f"no payment {data.payment_id}")
        if payment.status != "succeeded":
            raise ConflictError(f"only a succeeded payment can be refunded; this one is {payment.status}")
        if payment.provider_account_id is None or payment.provider_payment_id is None:
            raise ConflictError("this payment was not made through a provider: there is nothing to refund there")
        accounts = ProviderAccountRepository(self.session, self.writer.tenant_id)
        if await accounts.get_live(payment.provider_account_id, for_share=True) is None:
            # Its refund could never be sent: it would wait, its amount reserved, for the tenant.
            raise ConflictError(
                f"provider account {payment.provider_account_id}, which took this payment, was deleted: "
                "refund it at the provider itself"
            )
        refundable = payment.amount - payment.refunded_amount
        amount = refundable if data.amount is None else data.amount
        if amount > refundable or amount == 0:
            raise InvalidFieldError(
                "amount",
                f"at most {refundable} {payment.currency} minor units can be refunded "
                f"(amount {payment.amount} - refunded_amount {payment.refunded_amount})",
            )
        payment.refunded_amount += amount
        refund = Refund(
            payment_id=payment.id, amount=amount, currency=payment.currency, status="pending", reason=data.reason
        )
        self.session.add(refund)
        await self.session.flush()
        await self.writer.write("refund.create", refund.id, [payment.provider_account_id])
        await self.session.refresh(refund)
        await emit(self.session, "refund.created", "refund", refund.id, RefundView.of(refund))
        return refund
