"""``POST /v1/refunds/{id}/sync``: ask the provider at once how a refund it holds as pending
stands, or whether it made a refund billplane could not confirm, and record the answer as its
webhook (or the worker) would have. Never commits: the request owns the transaction.

The periodic job's steps (``billplane.payments.refund_run``) for one refund: a refund held as
pending is asked about without the job's wait; one never confirmed, once its request gave up
``BILLPLANE_PAYMENT_RECONCILE_AFTER_MINUTES`` ago, as for the job. 404 for another tenant's
refund, 409 when there is nothing to ask (settled, still being sent, or gave up too recently),
422 naming ``refund_id`` when the provider cannot be asked (no ``refund_status``, or no
``refund_lookup``), 409 when it refuses (its account was deleted, say), 503 when it cannot be
reached now, 502 when its plugin fails with an error of its own (``syncing.provider_answer``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from litestar.exceptions import NotFoundException
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.api.problems import ConflictError, InvalidFieldError
from billplane.payments import lost_refunds, pending_refunds
from billplane.payments.lookup import PaymentLookup
from billplane.payments.models import Payment, Refund
from billplane.payments.pending_refunds import HeldRefund, held_refund
from billplane.payments.repository import PaymentRepository
from billplane.payments.syncing import provider_answer
from billplane.settings import PendingChecks


@dataclass
class RefundSync:
    session: AsyncSession
    tenant_id: int
    lookup: PaymentLookup
    settle_after: timedelta  # BILLPLANE_PAYMENT_RECONCILE_AFTER_MINUTES, as for the periodic job
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
            await self._look_up(held)
        else:
            await self._ask_status(held)
        shown = await repository.lock_refund(refund_id)  # as it is now
        if shown is None:
            raise NotFoundException(f"no refund {refund_id}")
        return shown

    async def _look_up(self, held: HeldRefund) -> None:
        lost = await lost_refunds.lost_refund(
            self.session, self.tenant_id, held, settle_after=self.settle_after, now=await self._now()
        )
        if isinstance(lost, lost_refunds.NotLost):
            raise ConflictError(lost.reason)
        if not self.lookup.can_look_up_refund(held.provider):
            raise InvalidFieldError(
                "refund_id",
                f"{held.provider} accounts cannot be asked whether they made a refund (no refund_lookup capability): "
                f"check at {held.provider}, then settle it with POST /v1/refunds/{held.refund_id}/resolve once "
                "billplane shows it to you (action_required); billplane will not send it again by itself",
                source="path",
            )
        async with provider_answer(held.provider, "the refund"):
            found = await self.lookup.find_refund(lost, self.tenant_id)
        await lost_refunds.record_found(self.session, held, found)  # settled meanwhile or not: shown as it is now

    async def _ask_status(self, held: HeldRefund) -> None:
        refund_id = held.refund_id
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
        now = await self._now()
        await pending_refunds.record_answer(self.session, held, found, now=now, flag_after=self.pending.flag_after)

    async def _now(self) -> datetime:
        return (await self.session.execute(text("SELECT now()"))).scalar_one()  # type: ignore[no-any-return]
