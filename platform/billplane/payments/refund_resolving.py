"""``POST /v1/refunds/{id}/resolve``: the tenant settles a refund billplane shows as waiting for
them (``action_required``), after checking at the provider. Never commits: the request owns the
transaction.

Only for such refunds (``billplane.payments.pending_refunds``): a refund billplane could not
confirm, one whose provider account was deleted, or one the provider holds as pending that
nothing settled within ``BILLPLANE_PAYMENT_PENDING_FLAG_HOURS``. Earlier, the provider's webhook
or billplane's own asking settles it, and a tenant's "failed" while a refund still clears would
give its amount back to be refunded twice. A "failed" is the tenant's word
(``resolved_by_tenant``): the provider's later "succeeded" overrules it
(``refund_settlement.refund_cleared``).

A provider refund the tenant names for a refund billplane could not confirm is read from the
provider first where it can be (``refund_status``): a mistyped id would record the refund under
an id its own webhook never matches, and that webhook would then count the money a second time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from litestar.exceptions import NotFoundException
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.api.problems import BadGatewayError, ConflictError, InvalidFieldError, ServiceUnavailableError
from billplane.payments.lookup import AccountGoneError, PaymentLookup, PluginFailedError
from billplane.payments.models import RESOLVED_BY_TENANT, Payment, Refund
from billplane.payments.pending_refunds import HeldRefund, held_refund
from billplane.payments.refund_settlement import refund_settled, unlike
from billplane.payments.repository import PaymentRepository
from billplane.payments.schemas import RefundResolve
from billplane.plugins.contract import RefundStatus
from billplane.plugins.errors import ProviderError, RetryableProviderError

logger = logging.getLogger("billplane.payments")

RESOLVED_MESSAGE = "the tenant found that the provider did not refund it; its amount went back to the payment"


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


def _waiting_for_the_tenant(refund: Refund | None, refund_id: int) -> Refund:
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
    return refund


@dataclass
class RefundResolution:
    session: AsyncSession
    tenant_id: int
    lookup: PaymentLookup

    async def resolve(self, refund_id: int, body: RefundResolve) -> Refund:
        repository = PaymentRepository(session=self.session)
        refund = _waiting_for_the_tenant(await repository.find_refund(refund_id), refund_id)
        outcome, named = _checked(refund, body)
        if outcome == "succeeded" and refund.provider_refund_id is None and named is not None:
            await self._not_recorded_elsewhere(refund, named)
            await self._found_at_the_provider(refund, named)  # outside the row lock: a provider call
        # Locked, and checked again: a webhook or the reconciliation job may have settled it meanwhile.
        refund = _waiting_for_the_tenant(await repository.lock_refund(refund_id), refund_id)
        outcome, named = _checked(refund, body)
        if outcome == "succeeded" and named is not None and named != refund.provider_refund_id:
            await self._not_recorded_elsewhere(refund, named)  # its webhook may have come during the check
        if outcome == "failed":
            await refund_settled(
                self.session, refund, "failed", failure_code=RESOLVED_BY_TENANT, failure_message=RESOLVED_MESSAGE
            )
        else:
            await refund_settled(self.session, refund, "succeeded", named)
        return refund

    async def _not_recorded_elsewhere(self, refund: Refund, provider_refund_id: str) -> None:
        """A provider that does not report billplane's refund id has its webhook recorded as a
        refund of its own: this one succeeding too would count the money twice."""
        other = await PaymentRepository(session=self.session).other_refund(provider_refund_id, than=refund.id)
        if other is not None:
            raise ConflictError(
                f"refund {other.id} ({other.status}) already records {provider_refund_id}, from the provider's "
                "webhook: resolve this one as failed, so that the money is counted once"
            )

    async def _found_at_the_provider(self, refund: Refund, provider_refund_id: str) -> None:
        """The named refund, read from a provider that can be asked, is this refund, and succeeded."""
        payment = await self.session.get(Payment, refund.payment_id)
        held = held_refund(refund, payment) if payment is not None else None
        if held is None or not await self.lookup.can_ask(held, self.tenant_id):
            return  # the tenant's word is all there is
        asking = HeldRefund(held.refund_id, held.account_id, held.provider, provider_refund_id, held.created_at)
        try:
            found = await self.lookup.refund_status(asking, self.tenant_id)
        except AccountGoneError:
            return
        except RetryableProviderError as exc:
            raise ServiceUnavailableError(
                detail=f"{held.provider} could not be reached to check {provider_refund_id} ({exc.message}); "
                "resolve again later"
            ) from exc
        except ProviderError as exc:
            raise ConflictError(f"{held.provider} did not answer about {provider_refund_id}: {exc.message}") from exc
        except PluginFailedError as exc:  # the plugin's own bug: 502, as the /sync routes answer it
            logger.exception("asking %s about refund %s failed in its plugin", held.provider, provider_refund_id)
            raise BadGatewayError(
                detail=f"the {held.provider} plugin failed while asking about {provider_refund_id}; nothing was "
                "changed (see the logs)"
            ) from exc
        why = "has no refund with that id" if found is None else unlike(found, refund, payment)
        if why is not None:
            raise InvalidFieldError("provider_refund_id", f"{held.provider} {why}")
        if found is not None and found.status != "succeeded":
            raise ConflictError(
                f"{held.provider} holds {provider_refund_id} as {found.status}: resolve it as succeeded once it has "
                "succeeded there, or as failed if it failed"
            )
