"""/v1/payments (read-only: the billing engine and providers write them)"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.api.pagination import DEFAULT_LIMIT, Cursor, Limit, Page, decode_cursor
from billplane.db.mixins import MAX_ID
from billplane.payments.models import PAYMENT_STATUSES
from billplane.payments.repository import PaymentFilters, PaymentRepository
from billplane.payments.schemas import Payment
from billplane.payments.service import PaymentService


async def provide_payment_service(tenant_session: NamedDependency[AsyncSession]) -> PaymentService:
    return PaymentService(PaymentRepository(session=tenant_session))


class PaymentController(Controller):
    path = "/v1/payments"
    tags = ["payments"]
    security = [{"apiKey": []}]
    dependencies = {"payments": Provide(provide_payment_service)}

    @get("/{payment_id:int}", operation_id="getPayment")
    async def get_payment(self, payment_id: FromPath[int], payments: NamedDependency[PaymentService]) -> Payment:
        """One payment with its refunds; 404 if it does not exist or belongs to another tenant."""
        return Payment.of(await payments.get(payment_id))

    @get("/", operation_id="listPayments")
    async def list_payments(
        self,
        *,
        payments: NamedDependency[PaymentService],
        customer_id: Annotated[int | None, QueryParameter(ge=1, le=MAX_ID, description="This customer's only.")] = None,
        invoice_id: Annotated[
            int | None, QueryParameter(ge=1, le=MAX_ID, description="Paying this invoice only.")
        ] = None,
        status: Annotated[str | None, QueryParameter(enum=PAYMENT_STATUSES, description="In this state only.")] = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Page[Payment]:
        """List payments with their refunds, oldest first, filtered by customer, invoice or status."""
        filters = PaymentFilters(customer_id, invoice_id, status)
        rows, next_cursor = await payments.page(filters, after=decode_cursor(cursor), limit=limit)
        return Page(data=[Payment.of(row) for row in rows], next_cursor=next_cursor)
