"""Payment reads. Never commits: the request owns the transaction.

Payments are written by invoice payments (``billplane.invoices.paying``) and provider events;
refunds by ``billplane.payments.refunds``.
"""

from __future__ import annotations

from litestar.exceptions import NotFoundException

from billplane.api.pagination import page_of
from billplane.api.problems import InvalidFieldError
from billplane.payments.models import PAYMENT_STATUSES, Payment
from billplane.payments.repository import PaymentFilters, PaymentRepository


class PaymentService:
    def __init__(self, repository: PaymentRepository) -> None:
        self.repository = repository

    async def get(self, payment_id: int) -> Payment:
        payment = await self.repository.find(payment_id)
        if payment is None:  # another tenant's id looks exactly like an id that never existed
            raise NotFoundException(f"no payment {payment_id}")
        return payment

    async def page(self, filters: PaymentFilters, *, after: int | None, limit: int) -> tuple[list[Payment], str | None]:
        if filters.status is not None and filters.status not in PAYMENT_STATUSES:
            raise InvalidFieldError("status", f"must be one of {', '.join(PAYMENT_STATUSES)}", source="query")
        rows = await self.repository.page_matching(filters, after=after, limit=limit)
        return page_of(rows, limit)
