"""Performs one outbox row: claim, call the provider with the row's key, record, in that order."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from billplane.db.job_owner import TenantGoneError, owned_session
from billplane.observability.metrics import sync_failure
from billplane.plugins.errors import ProviderError, RetryableProviderError
from billplane.provider_accounts.resolved import AccountSource, ResolvedAccount
from billplane.sync.attempt import Attempt, NotReadyError
from billplane.sync.backoff import retry_delay
from billplane.sync.failure_text import provider_failure, unexpected_failure
from billplane.sync.models import OutboxEntry
from billplane.sync.operations import Operation
from billplane.sync.options import SyncOptions
from billplane.sync.queue import JobQueue
from billplane.sync.refs import OutboxRef
from billplane.sync.registry import OPERATIONS
from billplane.sync.repository import OutboxRepository
from billplane_tenants import Database

logger = logging.getLogger("billplane.sync")
UNKNOWN_PROVIDER = "_unknown"


class MissingAccountSourceError(Exception):
    """This process was started without provider accounts: it cannot call any provider."""


@dataclass(slots=True)
class OutboxPerformer:
    database: Database
    accounts: AccountSource | None
    queue: JobQueue
    options: SyncOptions

    async def perform(self, ref: OutboxRef) -> str:
        """Attempt the row once; returns what happened: done, retry, waiting, failed or skipped."""
        try:
            return await self._perform(ref)
        except TenantGoneError:
            logger.warning("outbox job %s of %s dropped: tenant %s is gone", ref.outbox_id, ref.schema, ref.tenant_id)
            return "skipped"

    async def _perform(self, ref: OutboxRef) -> str:
        async with owned_session(self.database, ref.tenant_id, ref.schema) as session:
            row = await OutboxRepository(session).claim(ref.outbox_id, lease_seconds=self.options.lease_seconds)
        if row is None:  # done, failed, not due (another worker holds it), or behind an older row
            return "skipped"
        outcome = await self._attempt(ref, row)
        if outcome in {"done", "failed"}:
            await self._ring_next(ref, row)
        return outcome

    async def _attempt(self, ref: OutboxRef, row: OutboxEntry) -> str:
        provider = UNKNOWN_PROVIDER  # until the account is resolved
        secrets: tuple[str, ...] = ()  # the account's, scrubbed from its errors by name
        try:
            account = await self._account(ref, row)
            provider, secrets = account.provider, account.secrets
            attempt = Attempt(ref=ref, row=row, account=account, database=self.database, queue=self.queue)
            await _operation(row.kind)(attempt)
        except NotReadyError as exc:
            await self._later(ref, row, delay=self.options.not_ready_delay, error=str(exc), count=False)
            return "waiting"
        except MissingAccountSourceError as exc:
            logger.warning("outbox row %s of %s left pending: %s", row.id, ref.schema, exc)
            await self._later(ref, row, delay=self.options.lease_seconds, error=str(exc), count=False)
            return "waiting"
        except RetryableProviderError as exc:
            error = provider_failure(exc, secrets)  # scrubbed before it is stored or logged: tenants' keys read it
            outcome = await self._retry_or_fail(ref, row, error, exc.retry_after)
        except ProviderError as exc:
            error = provider_failure(exc, secrets)
            await self._fail(ref, row, error)
            outcome = "failed"
        except TenantGoneError:
            raise  # the tenant went during the call: nothing of its answer is recorded
        except Exception as exc:  # a bug or a network error the adapter did not classify: retry, bounded
            error = unexpected_failure(exc, secrets)  # its type, not its text (which may hold a credential)
            # The traceback stays in the log: every record is scrubbed (billplane.observability.records).
            logger.exception("outbox row %s of %s raised %s; will retry", row.id, ref.schema, type(exc).__name__)
            outcome = await self._retry_or_fail(ref, row, error, None)
        else:
            return "done"
        sync_failure(provider, outcome)  # retry or failed: every failed attempt, by provider
        level = logging.WARNING if outcome == "failed" else logging.INFO
        logger.log(
            level, "outbox row %s of %s (%s at %s): %s; %s", row.id, ref.schema, row.kind, provider, error, outcome
        )
        return outcome

    async def _account(self, ref: OutboxRef, row: OutboxEntry) -> ResolvedAccount:
        if self.accounts is None:
            raise MissingAccountSourceError("no provider account source is configured in this process")
        account = await self.accounts.account(row.provider_account_id)
        if account is None:
            raise ProviderError(f"provider account {row.provider_account_id} no longer exists")
        if account.tenant_id != ref.tenant_id or account.tenant_schema != ref.schema:
            raise ProviderError(f"provider account {row.provider_account_id} belongs to another tenant")
        return account

    async def _retry_or_fail(self, ref: OutboxRef, row: OutboxEntry, error: str, retry_after: float | None) -> str:
        attempts = row.attempts + 1
        if attempts >= self.options.max_attempts:
            await self._fail(ref, row, f"gave up after {attempts} attempts: {error}")
            return "failed"
        delay = retry_delay(attempts, base=self.options.base_delay, cap=self.options.max_delay, retry_after=retry_after)
        await self._later(ref, row, delay=delay, error=error, count=True)
        return "retry"

    async def _later(self, ref: OutboxRef, row: OutboxEntry, *, delay: float, error: str | None, count: bool) -> None:
        async with owned_session(self.database, ref.tenant_id, ref.schema) as session:
            outbox = OutboxRepository(session)
            at = await outbox.retry_later(row, delay=delay, error=error, count=count)
            await outbox.refresh_object(row.object_type, row.object_id)
        if at is None:  # finished meanwhile by an attempt that claimed it after this one's lease
            return
        try:
            await self.queue.defer(ref, at=at, lock=False)
        except Exception:  # the row is due at `at` anyway: the sweep defers it then
            logger.exception("could not schedule the retry of outbox row %s of %s", row.id, ref.schema)

    async def _fail(self, ref: OutboxRef, row: OutboxEntry, error: str) -> None:
        async with owned_session(self.database, ref.tenant_id, ref.schema) as session:
            outbox = OutboxRepository(session)
            await outbox.fail(row, error)
            await outbox.refresh_object(row.object_type, row.object_id)

    async def _ring_next(self, ref: OutboxRef, row: OutboxEntry) -> None:
        """Rows of the same object queued behind this one may run now."""
        async with owned_session(self.database, ref.tenant_id, ref.schema) as session:
            following = await OutboxRepository(session).next_for_object(row)
        for outbox_id in following:  # deferred before this job ends, so a draining worker sees it
            await self.queue.defer(OutboxRef(ref.tenant_id, ref.schema, outbox_id))


def _operation(kind: str) -> Operation:
    operation = OPERATIONS.get(kind)
    if operation is None:
        raise ProviderError(f"billplane cannot perform outbox rows of kind {kind!r}")
    return operation
