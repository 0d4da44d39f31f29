"""``POST /v1/refunds/{id}/sync``: ask the provider at once how a refund it holds as pending
stands, and record a settled answer as its webhook would have. Never commits: the request owns
the transaction.

The periodic job's steps (``billplane.payments.refund_run``) for one refund, without its wait:
404 for another tenant's refund, 409 when there is nothing to ask (settled, or never confirmed:
no provider id to read it by; resolve it), 422 naming ``refund_id`` when the provider cannot be
asked (no ``refund_status``), 409 when it refuses (its account was deleted, say), 503 when it
cannot be reached now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from litestar.exceptions import NotFoundException
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.api.problems import ConflictError, InvalidFieldError
from billplane.payments import pending_refunds
from billplane.payments.lookup import PaymentLookup
from billplane.payments.models import Payment, Refund
from billplane.payments.pending_refunds import held_refund
from billplane.payments.repository import PaymentRepository
from billplane.payments.syncing import provider_answer
from billplane.settings import PendingChecks


@dataclass
class RefundSync:
    session: AsyncSession
    tenant_id: int
    lookup: PaymentLookup
    pending: PendingChecks

    async def sync(self, refund_id: int) -> Refund:
        repository = PaymentRepository(session=self.session)
        refund = await repository.find_refund(refund_id)
        if refund is None:  # another tenant's id looks exactly like an id that never existed
            raise NotFoundException(f"no refund {refund_id}")
        payment = await self.session.get(Payment, refund.payment_id)
        held = held_refund(refund, payment) if payment is not None else None
        if held is None:
            raise ConflictError(f"the refund is {refund.status}: there is nothing to ask the provider about")
        if held.provider_refund_id is None:
            raise ConflictError(
                "billplane has no provider id for this refund yet, so the provider cannot be asked about it: its "
                "request is still being sent, or billplane could not confirm it (then it shows action_required "
                "once BILLPLANE_PAYMENT_RECONCILE_AFTER_MINUTES have passed since its request gave up: check at "
                f"{held.provider} and settle it with POST /v1/refunds/{refund_id}/resolve)"
            )
        if not self.lookup.can_read_refund(held.provider):
            raise InvalidFieldError(
                "refund_id",
                f"{held.provider} accounts cannot be asked how a refund stands (no refund_status capability): its "
                "webhook settles the refund; if nothing has within BILLPLANE_PAYMENT_PENDING_FLAG_HOURS, billplane "
                f"shows it to you (action_required) to settle with POST /v1/refunds/{refund_id}/resolve",
                source="path",
            )
        async with provider_answer(held.provider, "the refund"):
            found = await self.lookup.refund_status(held, self.tenant_id)
        now: datetime = (await self.session.execute(text("SELECT now()"))).scalar_one()
        await pending_refunds.record_answer(self.session, held, found, now=now, flag_after=self.pending.flag_after)
        shown = await repository.lock_refund(refund_id)  # as it is now
        if shown is None:
            raise NotFoundException(f"no refund {refund_id}")
        return shown
