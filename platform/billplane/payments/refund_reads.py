"""Refund reads: ``GET /v1/refunds`` and ``GET /v1/refunds/{id}``. Never commits: the request owns
the transaction. Refunds are written by ``billplane.payments.refunds`` and settled by
``billplane.payments.refund_settlement``.
"""

from __future__ import annotations

from dataclasses import dataclass

from litestar.exceptions import NotFoundException
from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.api.pagination import page_of
from billplane.api.problems import InvalidFieldError
from billplane.payments.models import REFUND_STATUSES, Refund
from billplane.payments.repository import PaymentRepository


@dataclass(frozen=True, slots=True)
class RefundFilters:
    payment_id: int | None = None
    status: str | None = None
    # True: only refunds waiting for the tenant (action_required set); False: only the others.
    action_required: bool | None = None


@dataclass
class RefundReads:
    session: AsyncSession

    async def get(self, refund_id: int) -> Refund:
        refund = await PaymentRepository(session=self.session).find_refund(refund_id)
        if refund is None:  # another tenant's id looks exactly like an id that never existed
            raise NotFoundException(f"no refund {refund_id}")
        return refund

    async def page(self, filters: RefundFilters, *, after: int | None, limit: int) -> tuple[list[Refund], str | None]:
        if filters.status is not None and filters.status not in REFUND_STATUSES:
            raise InvalidFieldError("status", f"must be one of {', '.join(REFUND_STATUSES)}", source="query")
        where: list[ColumnElement[bool]] = []
        if filters.payment_id is not None:
            where.append(Refund.payment_id == filters.payment_id)
        if filters.status is not None:
            where.append(Refund.status == filters.status)
        if filters.action_required is not None:
            shown = Refund.action_required.is_not(None)
            where.append(shown if filters.action_required else Refund.action_required.is_(None))
        query = select(Refund).where(*where).order_by(Refund.id).limit(limit + 1)
        if after is not None:
            query = query.where(Refund.id > after)
        return page_of(list((await self.session.execute(query)).scalars()), limit)
