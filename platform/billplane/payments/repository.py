"""All SQL for payments and their refunds."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, select

from billplane.db.mixins import MAX_ID
from billplane.db.repository import TenantRepository
from billplane.payments.models import Payment, PaymentMethod, Refund


@dataclass(frozen=True, slots=True)
class PaymentFilters:
    customer_id: int | None = None
    invoice_id: int | None = None
    status: str | None = None


class PaymentRepository(TenantRepository[Payment]):
    """Refunds come with their payments: `Payment.refunds` loads with one extra query per batch of payments."""

    model_type = Payment

    async def page_matching(self, filters: PaymentFilters, *, after: int | None, limit: int) -> list[Payment]:
        where: list[ColumnElement[bool]] = []
        if filters.customer_id is not None:
            where.append(Payment.customer_id == filters.customer_id)
        if filters.invoice_id is not None:
            where.append(Payment.invoice_id == filters.invoice_id)
        if filters.status is not None:
            where.append(Payment.status == filters.status)
        return await self.page(*where, after=after, limit=limit)

    async def lock(self, payment_id: int) -> Payment | None:
        """The payment, row-locked until the transaction ends (refunds of one payment run one at a time)."""
        if not 1 <= payment_id <= MAX_ID:
            return None
        query = select(Payment).where(Payment.id == payment_id).with_for_update()
        return (await self.session.execute(query.execution_options(populate_existing=True))).scalar_one_or_none()

    async def find_refund(self, refund_id: int) -> Refund | None:
        return await self.session.get(Refund, refund_id) if 1 <= refund_id <= MAX_ID else None

    async def other_refund(self, provider_refund_id: str, *, than: int) -> Refund | None:
        """Another refund already recording this provider refund (its webhook came first)."""
        query = select(Refund).where(Refund.provider_refund_id == provider_refund_id, Refund.id != than)
        return (await self.session.execute(query)).scalars().first()

    async def lock_refund(self, refund_id: int) -> Refund | None:
        if not 1 <= refund_id <= MAX_ID:
            return None
        query = select(Refund).where(Refund.id == refund_id).with_for_update()
        return (await self.session.execute(query.execution_options(populate_existing=True))).scalar_one_or_none()

    async def usable_method(self, method_id: int, customer_id: int) -> PaymentMethod | None:
        """The customer's payment method, if it is still attached."""
        if not 1 <= method_id <= MAX_ID:
            return None
        query = select(PaymentMethod).where(
            PaymentMethod.id == method_id, PaymentMethod.customer_id == customer_id, PaymentMethod.detached_at.is_(None)
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def default_method(self, customer_id: int, account_id: int) -> PaymentMethod | None:
        """The customer's default attached payment method at this provider account (the newest, if several)."""
        query = (
            select(PaymentMethod)
            .where(
                PaymentMethod.customer_id == customer_id,
                PaymentMethod.provider_account_id == account_id,
                PaymentMethod.is_default.is_(True),
                PaymentMethod.detached_at.is_(None),
            )
            .order_by(PaymentMethod.id.desc())
            .limit(1)
        )
        return (await self.session.execute(query)).scalar_one_or_none()
