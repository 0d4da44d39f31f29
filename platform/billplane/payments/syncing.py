"""``POST /v1/payments/{id}/sync``: reconcile one payment by hand. Never commits: the request owns
the transaction.

The same steps as the periodic job (``billplane.payments.reconcile_run``), for one payment and at
once, answering the payment: 409 when it is not stuck (or not for long enough), 422 naming
``payment_id`` when its provider cannot be asked, 503 when the provider cannot be reached now,
502 when its plugin fails with an error of its own (a bug), changing nothing.
A payment the provider holds as pending is asked about at once, without the job's wait.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from billplane.api.problems import BadGatewayError, ConflictError, InvalidFieldError, ServiceUnavailableError
from billplane.payments import pending_charges
from billplane.payments.by_hand import ByHand
from billplane.payments.lookup import PluginFailedError
from billplane.payments.models import Payment
from billplane.payments.pending_charges import PendingCharge, pending_charge
from billplane.payments.reconcile import record_lookup
from billplane.plugins.errors import ProviderError, RetryableProviderError

logger = logging.getLogger("billplane.payments")


class PaymentSync(ByHand):
    async def sync(self, payment_id: int) -> Payment:
        payment = self.found(await self.payments.find(payment_id), payment_id)
        held = pending_charge(payment)
        if held is not None:
            return await self._ask_status(held)
        stuck = await self.unconfirmed(payment)
        if not self.lookup.can_look_up(stuck.provider):
            raise InvalidFieldError(
                "payment_id",
                f"{stuck.provider} accounts cannot be asked about a charge (no payment_lookup capability): check "
                f"the account at {stuck.provider}; billplane will not charge this payment again by itself",
                source="path",
            )
        async with provider_answer(stuck.provider):
            found = await self.lookup.find(stuck, self.tenant_id)
        await record_lookup(self.session, payment_id, found)  # settled meanwhile or not: shown as it is now
        return self.found(await self.payments.lock(payment_id), payment_id)  # as it is now

    async def _ask_status(self, held: PendingCharge) -> Payment:
        if not self.lookup.can_read_status(held.provider):
            raise InvalidFieldError(
                "payment_id",
                f"{held.provider} accounts cannot be asked how a charge stands (no payment_status capability): its "
                "webhook settles the payment; if nothing has within BILLPLANE_PAYMENT_PENDING_FLAG_HOURS, billplane "
                f"shows it to you (action_required) to settle with POST /v1/payments/{held.payment_id}/resolve",
                source="path",
            )
        async with provider_answer(held.provider):
            found = await self.lookup.status(held, self.tenant_id)
        await pending_charges.record_answer(
            self.session, held, found, now=await self.now(), flag_after=self.pending.flag_after
        )
        return self.found(await self.payments.lock(held.payment_id), held.payment_id)  # as it is now


@asynccontextmanager
async def provider_answer(provider: str, about: str = "the charge") -> AsyncIterator[None]:
    """The provider's failure to answer as the route's: 503 to ask again later, 409 for a refusal,
    and 502 for any other exception of the adapter's own call (``PluginFailedError``: the plugin's
    bug), as the reconciliation job takes one for no answer: the request then rolls back whole, so
    nothing is recorded. The client is told nothing of the exception (it may hold anything); the log
    has the traceback, secrets scrubbed (``billplane.observability.records``). billplane's own
    failures on the way (the account's control session, its credentials, the plugin's lookup) are
    not the plugin's: they pass through, a 500 like any other."""
    try:
        yield
    except RetryableProviderError as exc:
        raise ServiceUnavailableError(
            detail=f"{provider} could not be reached ({exc.message}); ask again later"
        ) from exc
    except ProviderError as exc:
        raise ConflictError(f"{provider} did not answer about {about}: {exc.message}") from exc
    except PluginFailedError as exc:
        logger.exception("asking %s about %s failed in its plugin", provider, about)
        raise BadGatewayError(
            detail=f"the {provider} plugin failed while asking about {about}; nothing was changed (see the logs)"
        ) from exc
