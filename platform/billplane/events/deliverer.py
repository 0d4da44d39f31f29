"""Attempts one webhook delivery: claim, sign, POST, record, in that order.

The POST happens outside any transaction (a slow receiver holds no connection). A 2xx is
delivered; anything else is a failed attempt, retried after ``retry_schedule[attempts - 1]``
seconds until ``max_attempts`` have failed. Every failed attempt counts against the endpoint
(``consecutive_failures``; any 2xx resets it). When a delivery runs out of attempts while the
endpoint has failed at least ``max_attempts`` times in a row - nothing got through during the
whole retry window, about 38 hours by default - the endpoint is disabled with the reason, its
waiting deliveries fail, and ``webhook_endpoint.disabled`` is emitted so the tenant finds out
from its events.

An outcome is recorded only while this attempt's claim still holds the delivery (see
``deliveries``): an attempt that outlived its lease is logged and dropped. After each attempt the
job tops its tenant's queue back up (``DeliverySweeper.top_up``), so a burst of events drains at
the workers' pace instead of a page per periodic sweep.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime

import msgspec

from billplane.db.job_owner import TenantGoneError, owned_session
from billplane.events import types
from billplane.events.deliveries import UNSUBSCRIBED, Claimed, DeliveryRepository
from billplane.events.emit import emit
from billplane.events.jobs import SWEEP_SECONDS, DeliveryRef, defer
from billplane.events.models import WebhookEndpoint
from billplane.events.options import WebhookOptions
from billplane.events.schemas import WebhookEndpoint as EndpointShown
from billplane.events.sender import Outcome, post
from billplane.events.signing import message_id, signed_headers
from billplane.events.sweep import DeliverySweeper
from billplane.events.vault import EndpointVault, SecretUnavailableError
from billplane.observability.metrics import webhook_delivery
from billplane.sync.queue import JobQueue
from billplane_tenants import Database

logger = logging.getLogger("billplane.webhooks")


class Payload(msgspec.Struct):
    # The event's id as the API shows it (GET /v1/events/{id}); webhook-id also names the tenant
    # and the event's writing transaction.
    id: int
    type: str
    created_at: str
    data: dict[str, object]


def payload(claimed: Claimed) -> bytes:
    created = claimed.created_at.isoformat().replace("+00:00", "Z")
    return msgspec.json.encode(Payload(claimed.event_id, claimed.type, created, claimed.data))


@dataclass(slots=True)
class WebhookDeliverer:
    database: Database
    queue: JobQueue
    vault: EndpointVault
    options: WebhookOptions

    async def deliver(self, ref: DeliveryRef) -> str:
        """Attempt the delivery once: delivered, retry, failed, disabled (the endpoint) or skipped."""
        try:
            outcome = await self._deliver(ref)
        except TenantGoneError:
            logger.warning(
                "webhook job %s of %s dropped: tenant %s is gone", ref.delivery_id, ref.schema, ref.tenant_id
            )
            return "skipped"
        webhook_delivery(outcome)
        if outcome != "skipped":  # a skipped job changed nothing, so nothing new became due
            await self._top_up(ref)
        return outcome

    async def _top_up(self, ref: DeliveryRef) -> None:
        try:
            await DeliverySweeper(self.database, self.queue, self.options).top_up(ref.tenant_id, ref.schema)
        except Exception:  # the deliveries stay due: the next sweep queues them
            logger.exception("could not queue the next webhook deliveries of %s", ref.schema)

    async def _deliver(self, ref: DeliveryRef) -> str:
        async with owned_session(self.database, ref.tenant_id, ref.schema) as session:
            claimed = await DeliveryRepository(session).claim(ref.delivery_id, lease_seconds=self.options.lease_seconds)
        if claimed is None:  # done, not due, held by another worker, or behind an earlier delivery
            return "skipped"
        unsendable = _unsendable(claimed)
        if unsendable is not None:
            async with owned_session(self.database, ref.tenant_id, ref.schema) as session:
                await DeliveryRepository(session).fail_one(claimed, unsendable)
            await self._ring_next(ref, claimed)
            return "failed"
        try:
            secret = self.vault.open(
                ref.tenant_id, claimed.endpoint_id, claimed.secret_key_id, claimed.secret_ciphertext
            )
        except SecretUnavailableError as exc:
            outcome = Outcome(None, str(exc))
        else:
            body = payload(claimed)
            msg_id = message_id(ref.tenant_id, claimed.event_id, claimed.tx)
            headers = signed_headers(secret, msg_id, int(time.time()), body)
            outcome = await post(claimed.url, body, headers, self.options)
        if outcome.delivered and outcome.status_code is not None:
            async with owned_session(self.database, ref.tenant_id, ref.schema) as session:
                recorded = await DeliveryRepository(session).succeeded(claimed, outcome.status_code)
            if not recorded:
                _dropped(ref, claimed, f"HTTP {outcome.status_code}")
                return "skipped"
            await self._ring_next(ref, claimed)
            return "delivered"
        return await self._failed(ref, claimed, outcome)

    async def _failed(self, ref: DeliveryRef, claimed: Claimed, outcome: Outcome) -> str:
        attempts = claimed.attempts + 1
        final = attempts >= self.options.max_attempts
        delay = 0.0 if final else self.options.retry_schedule[attempts - 1]
        error = outcome.error or f"HTTP {outcome.status_code}"
        disabled = False
        async with owned_session(self.database, ref.tenant_id, ref.schema) as session:
            deliveries = DeliveryRepository(session)
            recorded = await deliveries.failed(
                claimed, status_code=outcome.status_code, error=error, delay=delay, final=final
            )
            if recorded is None:
                _dropped(ref, claimed, error)
                return "skipped"
            failures, due_at = recorded
            if final and failures >= self.options.max_attempts:
                disabled = await self._disable(deliveries, claimed, failures, error)
        if not final:
            if delay < SWEEP_SECONDS:
                await self._retry_job(ref, claimed, due_at)
            # A later one is left to the sweep and the top-ups, which queue at most a page of the
            # tenant's due deliveries at a time. Deferred one by one, a burst's retries (a receiver
            # down during a billing run) would come due as a wave no bound holds, ahead of every
            # other tenant's newer jobs. It costs the retry at most a sweep's interval.
            return "retry"
        await self._ring_next(ref, claimed)
        return "disabled" if disabled else "failed"

    async def _retry_job(self, ref: DeliveryRef, claimed: Claimed, due_at: datetime) -> None:
        try:
            await defer(self.queue, ref, at=due_at, lock=False)
        except Exception:  # the delivery is due at `due_at` anyway: the sweep queues it then
            logger.exception("could not schedule the retry of webhook delivery %s of %s", claimed.id, ref.schema)

    async def _disable(self, deliveries: DeliveryRepository, claimed: Claimed, failures: int, error: str) -> bool:
        reason = f"{failures} delivery attempts in a row failed; the last: {error}"[:500]
        if not await deliveries.disable_endpoint(claimed.endpoint_id, reason):
            return False
        endpoint = await deliveries.session.get(WebhookEndpoint, claimed.endpoint_id)
        if endpoint is not None:
            shown = EndpointShown.of(endpoint)
            await emit(deliveries.session, types.ENDPOINT_DISABLED, types.ENDPOINT_OBJECT, endpoint.id, shown)
        logger.warning("webhook endpoint %s disabled after %d failed attempts", claimed.endpoint_id, failures)
        return True

    async def _ring_next(self, ref: DeliveryRef, claimed: Claimed) -> None:
        """The next delivery about the same object to the same endpoint may run now."""
        async with owned_session(self.database, ref.tenant_id, ref.schema) as session:
            following = await DeliveryRepository(session).next_for_object(claimed)
        if following is not None:
            await defer(self.queue, DeliveryRef(ref.tenant_id, ref.schema, following))


def _unsendable(claimed: Claimed) -> str | None:
    """Why the delivery fails without an attempt (not counted against the endpoint), if it does."""
    if claimed.endpoint_status != "enabled":
        return "the endpoint is disabled"
    if not claimed.subscribed:
        return UNSUBSCRIBED
    return None


def _dropped(ref: DeliveryRef, claimed: Claimed, outcome: str) -> None:
    # Either the endpoint was disabled or deleted meanwhile, or this attempt outlived its lease and
    # another claim holds the delivery now: recording it would count one attempt twice.
    logger.warning(
        "outcome of webhook delivery %s of %s dropped (%s): it is no longer pending or no longer held by this attempt",
        claimed.id,
        ref.schema,
        outcome[:200],
    )
