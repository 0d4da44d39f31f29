"""What the two routes that settle an unconfirmed payment by hand share (``/sync`` asks the
provider, ``/resolve`` takes the tenant's word where the provider cannot be asked)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from litestar.exceptions import NotFoundException
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.api.problems import ConflictError
from billplane.payments.lookup import PaymentLookup
from billplane.payments.models import Payment
from billplane.payments.reconcile import NotStuck, Unconfirmed, unconfirmed
from billplane.payments.repository import PaymentRepository
from billplane.settings import PendingChecks


@dataclass
class ByHand:
    session: AsyncSession
    tenant_id: int
    lookup: PaymentLookup
    settle_after: timedelta  # BILLPLANE_PAYMENT_RECONCILE_AFTER_MINUTES, as for the periodic job
    pending: PendingChecks = field(default_factory=PendingChecks)  # BILLPLANE_PAYMENT_PENDING_*, likewise
    payments: PaymentRepository = field(init=False)

    def __post_init__(self) -> None:
        self.payments = PaymentRepository(session=self.session)

    @staticmethod
    def found(payment: Payment | None, payment_id: int) -> Payment:
        if payment is None:  # another tenant's id looks exactly like an id that never existed
            raise NotFoundException(f"no payment {payment_id}")
        return payment

    async def now(self) -> datetime:
        return (await self.session.execute(text("SELECT now()"))).scalar_one()  # type: ignore[no-any-return]

    async def unconfirmed(self, payment: Payment) -> Unconfirmed:
        """The payment's unconfirmed charge; 409 saying why when it is not (or not yet) one."""
        now = await self.now()
        stuck = await unconfirmed(self.session, self.tenant_id, payment, settle_after=self.settle_after, now=now)
        if isinstance(stuck, NotStuck):
            raise ConflictError(stuck.reason)
        return stuck
