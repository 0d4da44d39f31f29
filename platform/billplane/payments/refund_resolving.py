"""``POST /v1/refunds/{id}/resolve``: the tenant settles a refund billplane shows as waiting for
them (``action_required``), after checking at the provider. Never commits: the request owns the
transaction.

Only for such refunds (``billplane.payments.pending_refunds``): a refund billplane could not
confirm, one whose provider account was deleted, or one the provider holds as pending that
nothing settled within ``BILLPLANE_PAYMENT_PENDING_FLAG_HOURS``. Earlier, the provider's webhook
or billplane's own asking settles it, and a tenant's "failed" while a refund still clears would
give its amount back to be refunded twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from litestar.exceptions import NotFoundException
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.api.problems import ConflictError, InvalidFieldError
from billplane.payments import settlement
from billplane.payments.models import Refund
from billplane.payments.repository import PaymentRepository
from billplane.payments.schemas import RefundResolve
from billplane.plugins.contract import RefundStatus


def _checked(refund: Refund, body: RefundResolve) -> tuple[RefundStatus, str | None]:
    """The outcome, and the provider's id for the refund checked against what billplane holds."""
    outcome, named = body.outcome, body.provider_refund_id
    if outcome is None:
        raise InvalidFieldError("outcome", "required: succeeded (the provider refunded) or failed (it did not)")
    if refund.provider_refund_id is not None:
        if named not in {None, refund.provider_refund_id}:
            raise InvalidFieldError(
                "provider_refund_id", f"this refund is {refund.provider_refund_id} at the provider; name that or none"
            )
        return outcome, refund.provider_refund_id
    if outcome == "succeeded" and named is None:
        raise InvalidFieldError("provider_refund_id", "required with outcome succeeded: the refund's id there")
    if outcome == "failed" and named is not None:
        raise InvalidFieldError("provider_refund_id", "only with outcome succeeded: a failed outcome names no refund")
    return outcome, named


@dataclass
class RefundResolution:
    session: AsyncSession

    async def resolve(self, refund_id: int, body: RefundResolve) -> Refund:
        # Locked first: a webhook or the reconciliation job settling it meanwhile waits, then finds it settled.
        refund = await PaymentRepository(session=self.session).lock_refund(refund_id)
        if refund is None:  # another tenant's id looks exactly like an id that never existed
            raise NotFoundException(f"no refund {refund_id}")
        if refund.status != "pending":
            raise ConflictError(f"the refund is {refund.status}: there is nothing to resolve")
        if refund.action_required is None:
            raise ConflictError(
                "billplane is still waiting for the provider's answer about this refund (its webhook, or asking the "
                "provider); a refund nothing settles is shown to you (action_required) after "
                "BILLPLANE_PAYMENT_PENDING_FLAG_HOURS, or once billplane could not confirm it"
            )
        outcome, named = _checked(refund, body)
        if outcome == "succeeded" and refund.provider_refund_id is None and named is not None:
            await self._not_recorded_elsewhere(refund, named)
        await settlement.refund_settled(self.session, refund, outcome, named)
        return refund

    async def _not_recorded_elsewhere(self, refund: Refund, provider_refund_id: str) -> None:
        """A provider that does not report billplane's refund id has its webhook recorded as a
        refund of its own, already counted on the payment: this one succeeding too would count the
        money twice (it failed instead: the other records what went back)."""
        query = select(Refund.id).where(Refund.provider_refund_id == provider_refund_id, Refund.id != refund.id)
        other = await self.session.scalar(query)
        if other is not None:
            raise ConflictError(
                f"refund {other} already records {provider_refund_id} (from the provider's webhook) and counts its "
                "amount: resolve this one as failed, so that its reserved amount goes back to the payment"
            )
