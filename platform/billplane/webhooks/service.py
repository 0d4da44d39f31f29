"""Receiving a provider webhook: resolve the account, verify, store once, answer fast; and
setting an ignored event back to be applied again.

No API key: the provider's signature over the body, checked by the account's adapter with the
account's webhook secret, is the authentication. Nothing is stored unless it verifies. Applying
the events happens later, in a job (``billplane.webhooks.apply``).

An event the database refused, or that waited a day for what it needed, is ignored for good. Once
the cause is gone (a release fixed the bug, the payment was settled by hand), the tenant
(``POST /v1/provider-events/{id}/reapply``) or the operator (``billplane provider-events
reapply``) sets it back to ``received``, and its job is queued as a new event's is. That is safe
because applying is: every applier checks its object's watermark or state and records an object
once per provider id, and an ignored event changed nothing (a refused one's work was rolled back).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from litestar.exceptions import HTTPException, NotFoundException, ServiceUnavailableException
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.api.problems import ConflictError
from billplane.db.job_owner import TenantGoneError, owned_session
from billplane.db.mixins import MAX_ID
from billplane.plugins.contract import ProviderEvent
from billplane.plugins.errors import RetryableProviderError, WebhookVerificationError
from billplane.provider_accounts.resolved import AccountSource, ResolvedAccount
from billplane.sync.doorbell import ring_after_commit
from billplane.sync.queue import JobQueue
from billplane.sync.refs import EventRef
from billplane.webhooks.models import StoredEvent
from billplane.webhooks.repository import EventRepository
from billplane.webhooks.schemas import WebhookReceipt
from billplane_tenants import Database

logger = logging.getLogger("billplane.webhooks")
# Why an event that is not ignored is not reapplied (409).
_NOT_REAPPLIED = {
    "received": "it is still to be applied (its job, or the sweep, applies it)",
    "applied": "it was applied: what it says is taken already",
}


class WebhookRejectedError(HTTPException):
    status_code = 400


@dataclass(slots=True)
class WebhookReceiver:
    database: Database
    accounts: AccountSource | None
    queue: JobQueue

    async def account(self, provider: str, account_id: int) -> ResolvedAccount:
        """The account this endpoint belongs to; 404 for an unknown one or another provider's."""
        account = None
        if self.accounts is not None and 1 <= account_id <= MAX_ID:
            account = await self.accounts.account(account_id)
        if account is None or account.provider != provider:
            raise NotFoundException(f"no {provider} webhook endpoint for account {account_id}")
        return account

    async def receive(self, account: ResolvedAccount, headers: Mapping[str, str], body: bytes) -> WebhookReceipt:
        try:
            events = await account.adapter.parse_webhook(headers, body)
        except WebhookVerificationError as exc:
            logger.warning("webhook for %s account %s did not verify: %s", account.provider, account.id, exc.message)
            raise WebhookRejectedError(f"the webhook did not verify: {exc.message}") from exc
        except RetryableProviderError as exc:
            # The provider is unreachable (to verify the webhook, or to read what it names): a 5xx
            # makes the provider deliver the event again later, which a 400 would not.
            logger.warning("webhook for %s account %s not taken yet: %s", account.provider, account.id, exc.message)
            raise ServiceUnavailableException(f"the webhook could not be taken now: {exc.message}") from exc
        try:
            return await self._store(account, events, body)
        except TenantGoneError:  # deleted since its account was resolved: as if it never was
            raise NotFoundException(f"no {account.provider} webhook endpoint for account {account.id}") from None

    async def _store(self, account: ResolvedAccount, events: list[ProviderEvent], body: bytes) -> WebhookReceipt:
        async with owned_session(self.database, account.tenant_id, account.tenant_schema) as session:
            new, duplicates = await EventRepository(session).store(account.provider, account.id, events, body)
            refs = [EventRef(account.tenant_id, account.tenant_schema, event_id) for event_id in new]
            ring_after_commit(session, self.queue, refs)
        return WebhookReceipt(received=len(new), duplicates=duplicates)


async def reapply(session: AsyncSession, queue: JobQueue, ref: EventRef, *, by: str) -> StoredEvent:
    """Set ignored event ``ref`` back to ``received`` in the caller's transaction, its job queued
    once that commits; ``by`` says who asked, in its ``detail``. Under the row's lock, so an apply
    job or another reapply of it waits, then finds it as this left it. Its day of waiting
    (``WAIT_LIMIT``) counts from now (``reapplied_at``); ``received_at`` stays when it arrived.
    404 for no such event in the tenant's schema; 409 unless it is ``ignored``."""
    row = await EventRepository(session).lock(ref.event_id)
    if row is None:
        raise NotFoundException(f"no provider event {ref.event_id}")
    if row.status != "ignored":
        why = _NOT_REAPPLIED.get(row.status, "only an ignored event can be")
        raise ConflictError(f"provider event {ref.event_id} is {row.status}, not ignored: {why}")
    ignored = f"; it was ignored: {row.detail}" if row.detail else ""
    row.status, row.detail, row.applied_at = "received", f"reapplied {by}{ignored}", None
    row.reapplied_at = datetime.now(UTC)  # as applied_at is set: the apply job compares it with its own clock
    ring_after_commit(session, queue, [ref])
    logger.info("%s event %s of %s reapplied %s", row.provider, row.event_id, ref.schema, by)
    return row
