"""``POST /v1/payments/{id}/resolve``: the tenant settles a payment billplane could not confirm and
cannot ask its provider about, after checking at the provider. Never commits: the request owns the
transaction.

Only for such payments: where the provider can be asked (``payment_lookup``), billplane asks
(``POST /v1/payments/{id}/sync``) rather than take anyone's word. The same wait applies as for
reconciliation, so a charge request still in flight has landed before the tenant looks.

Also for a payment the provider holds as pending (``billplane.payments.pending_charges``), once
nothing settled it for ``BILLPLANE_PAYMENT_PENDING_FLAG_HOURS`` and it shows ``action_required``
(a bank debit may clear for days, and a tenant's early "failed" could be followed by the money
arriving), or at once when the account it went through was deleted.
"""

from __future__ import annotations

from sqlalchemy import select

from billplane.api.problems import ConflictError, InvalidFieldError
from billplane.payments import recorded_first, settlement
from billplane.payments.by_hand import ByHand
from billplane.payments.models import RESOLVED_BY_TENANT, Payment
from billplane.payments.pending_charges import PendingCharge, pending_charge
from billplane.payments.schemas import PaymentResolve

RESOLVED_CODE = RESOLVED_BY_TENANT
RESOLVED_MESSAGE = "the tenant found no such charge at the provider; no money moved"
RESOLVED_FAILED_MESSAGE = "the tenant found that the charge failed at the provider; no money moved"


def _checked(body: PaymentResolve) -> str | None:
    if body.outcome is None:
        raise InvalidFieldError("outcome", "required: succeeded (the provider has the charge) or failed (it has none)")
    if body.outcome == "succeeded" and body.provider_payment_id is None:
        raise InvalidFieldError("provider_payment_id", "required with outcome succeeded: the charge's id there")
    if body.outcome == "failed" and body.provider_payment_id is not None:
        raise InvalidFieldError("provider_payment_id", "only with outcome succeeded: a failed outcome names no charge")
    return body.provider_payment_id


class PaymentResolution(ByHand):
    async def resolve(self, payment_id: int, body: PaymentResolve) -> Payment:
        # Locked first: a webhook or the reconciliation job settling it meanwhile waits, then finds it settled.
        payment = self.found(await self.payments.lock(payment_id), payment_id)
        held = pending_charge(payment)
        if held is not None:
            return await self._resolve_held(payment, held, body)
        provider_payment_id = _checked(body)
        stuck = await self.unconfirmed(payment)
        if await self.lookup.can_ask(stuck, self.tenant_id):
            raise ConflictError(
                f"{stuck.provider} can be asked about the charge: reconcile it with POST /v1/payments/{payment_id}/sync"
            )
        if provider_payment_id is not None and await self._recorded_first(payment, provider_payment_id):
            return self.found(await self.payments.lock(payment_id), payment_id)  # canceled: the other one pays
        payment.action_required = None
        if provider_payment_id is None:
            await settlement.payment_settled(self.session, payment, "failed", RESOLVED_CODE, RESOLVED_MESSAGE)
        else:
            payment.provider_payment_id = provider_payment_id
            await settlement.payment_settled(self.session, payment, "succeeded")
        return self.found(await self.payments.lock(payment_id), payment_id)  # as it is now

    async def _resolve_held(self, payment: Payment, held: PendingCharge, body: PaymentResolve) -> Payment:
        if body.outcome is None:
            raise InvalidFieldError("outcome", "required: succeeded (the charge went through) or failed (it did not)")
        if payment.action_required is None and not await self._account_gone(held):
            raise ConflictError(
                f"{held.provider} holds the charge as pending and billplane is waiting for its outcome (its webhook, "
                f"or asking {held.provider}: POST /v1/payments/{held.payment_id}/sync where it can be asked); a "
                "charge nothing settles is shown to you (action_required) after BILLPLANE_PAYMENT_PENDING_FLAG_HOURS"
            )
        named = body.provider_payment_id
        if named not in {None, held.provider_payment_id}:
            # The charge's webhook may have been recorded under another id (PayPal reports a capture's
            # sale under its own): that payment takes the invoice, and the money is counted once.
            if body.outcome == "succeeded" and named is not None and await self._recorded_first(payment, named):
                return self.found(await self.payments.lock(held.payment_id), held.payment_id)
            raise InvalidFieldError(
                "provider_payment_id",
                f"this payment's charge at {held.provider} is {held.provider_payment_id}; another id must be one "
                "billplane recorded for the same charge from the provider's webhook, with outcome succeeded",
            )
        if body.outcome == "succeeded":
            await settlement.payment_settled(self.session, payment, "succeeded")
        else:
            await settlement.payment_settled(self.session, payment, "failed", RESOLVED_CODE, RESOLVED_FAILED_MESSAGE)
        return self.found(await self.payments.lock(held.payment_id), held.payment_id)  # as it is now

    async def _account_gone(self, held: PendingCharge) -> bool:
        """The provider could be asked, but the account the charge went through was deleted."""
        return self.lookup.can_read_status(held.provider) and not await self.lookup.can_ask(held, self.tenant_id)

    async def _recorded_first(self, payment: Payment, provider_payment_id: str) -> bool:
        """Whether another payment records the charge already (the provider's webhook came first):
        it then takes this payment's invoice (``recorded_first``); 409 when it is not the same charge."""
        found = (
            await self.session.execute(
                select(Payment.id, Payment.status).where(
                    Payment.provider_account_id == payment.provider_account_id,
                    Payment.provider_payment_id == provider_payment_id,
                )
            )
        ).one_or_none()
        if found is None:
            return False
        other, status = found
        if status == "failed":  # the tenant says the money moved; billplane recorded that charge as failed
            raise ConflictError(
                f"payment {other} records {provider_payment_id} as failed (from the provider's webhook), not as the "
                "charge that went through: check the charge at the provider; this payment stays pending"
            )
        if await recorded_first.adopt(self.session, payment, other) is None:  # the money is counted once
            raise ConflictError(
                f"payment {other} already records {provider_payment_id} (from the provider's webhook), and it is on "
                "another invoice or differs from this charge (customer, amount or currency): this payment stays "
                "pending"
            )
        return True
