"""``POST /v1/payments/{id}/sync``: reconcile one payment by hand. Never commits: the request owns
the transaction.

The same steps as the periodic job (``billplane.payments.reconcile_run``), for one payment and at
once, answering the payment: 409 when it is not stuck (or not for long enough), 422 naming
``payment_id`` when its provider cannot be asked, 503 when the provider cannot be reached now.
"""

from __future__ import annotations

from datetime import timedelta

from litestar.exceptions import NotFoundException
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.api.problems import ConflictError, InvalidFieldError, ServiceUnavailableError
from billplane.payments.lookup import PaymentLookup
from billplane.payments.models import Payment
from billplane.payments.reconcile import NotStuck, record_lookup, unconfirmed
from billplane.payments.repository import PaymentRepository
from billplane.plugins.errors import ProviderError, RetryableProviderError


class PaymentSync:
    def __init__(self, session: AsyncSession, tenant_id: int, lookup: PaymentLookup, settle_after: timedelta) -> None:
        self.session = session
        self.tenant_id = tenant_id
        self.lookup = lookup
        self.settle_after = settle_after
        self.payments = PaymentRepository(session=session)

    async def sync(self, payment_id: int) -> Payment:
        payment = await self.payments.find(payment_id)
        if payment is None:  # another tenant's id looks exactly like an id that never existed
            raise NotFoundException(f"no payment {payment_id}")
        now = (await self.session.execute(text("SELECT now()"))).scalar_one()
        stuck = await unconfirmed(self.session, self.tenant_id, payment, settle_after=self.settle_after, now=now)
        if isinstance(stuck, NotStuck):
            raise ConflictError(stuck.reason)
        if not self.lookup.can_look_up(stuck.provider):
            raise InvalidFieldError(
                "payment_id",
                f"{stuck.provider} accounts cannot be asked about a charge (no payment_lookup capability): check "
                f"the account at {stuck.provider}; billplane will not charge this payment again by itself",
                source="path",
            )
        try:
            found = await self.lookup.find(stuck, self.tenant_id)
        except RetryableProviderError as exc:
            raise ServiceUnavailableError(
                detail=f"{stuck.provider} could not be reached ({exc.message}); ask again later"
            ) from exc
        except ProviderError as exc:
            raise ConflictError(f"{stuck.provider} did not answer about the charge: {exc.message}") from exc
        await record_lookup(self.session, payment_id, found)  # settled meanwhile or not: shown as it is now
        refreshed = await self.payments.lock(payment_id)
        if refreshed is None:  # cannot happen inside this transaction; typed for the reader
            raise NotFoundException(f"no payment {payment_id}")
        return refreshed
