"""Receiving a provider webhook: resolve the account, verify, store once, answer fast.

No API key: the provider's signature over the body, checked by the account's adapter with the
account's webhook secret, is the authentication. Nothing is stored unless it verifies. Applying
the events happens later, in a job (``billplane.webhooks.apply``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from litestar.exceptions import HTTPException, NotFoundException, ServiceUnavailableException

from billplane.db.job_owner import TenantGoneError, owned_session
from billplane.db.mixins import MAX_ID
from billplane.plugins.contract import ProviderEvent
from billplane.plugins.errors import RetryableProviderError, WebhookVerificationError
from billplane.provider_accounts.resolved import AccountSource, ResolvedAccount
from billplane.sync.doorbell import ring_after_commit
from billplane.sync.queue import JobQueue
from billplane.sync.refs import EventRef
from billplane.webhooks.repository import EventRepository
from billplane.webhooks.schemas import WebhookReceipt
from billplane_tenants import Database

logger = logging.getLogger("billplane.webhooks")


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
