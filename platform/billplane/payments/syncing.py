"""``POST /v1/payments/{id}/sync``: reconcile one payment by hand. Never commits: the request owns
the transaction.

The same steps as the periodic job (``billplane.payments.reconcile_run``), for one payment and at
once, answering the payment: 409 when it is not stuck (or not for long enough), 422 naming
``payment_id`` when its provider cannot be asked, 503 when the provider cannot be reached now.
"""

from __future__ import annotations

from billplane.api.problems import ConflictError, InvalidFieldError, ServiceUnavailableError
from billplane.payments.by_hand import ByHand
from billplane.payments.models import Payment
from billplane.payments.reconcile import record_lookup
from billplane.plugins.errors import ProviderError, RetryableProviderError


class PaymentSync(ByHand):
    async def sync(self, payment_id: int) -> Payment:
        payment = self.found(await self.payments.find(payment_id), payment_id)
        stuck = await self.unconfirmed(payment)
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
        return self.found(await self.payments.lock(payment_id), payment_id)  # as it is now
