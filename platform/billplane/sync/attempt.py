"""One attempt at one outbox row: the account to call, the key to send, the transactions to use."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import msgspec
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.db.job_owner import owned_session
from billplane.plugins.errors import ProviderError
from billplane.provider_accounts.resolved import ResolvedAccount
from billplane.sync import faults
from billplane.sync.doorbell import ring_after_commit
from billplane.sync.models import OutboxEntry
from billplane.sync.queue import JobQueue
from billplane.sync.refs import OutboxRef, idempotency_key
from billplane.sync.repository import OutboxRepository
from billplane_tenants import Database

# Providers keep an idempotency key for a limited time (Stripe 24 hours, PayPal 72): sent again
# after that, a charge, a refund or a usage report is made a second time. The retry limit bounds
# only failed attempts, not the time a row waits (a lease that ran out after a crash, a suspended
# tenant, a Retry-After), so a row that may have called already is not sent again once this old.
KEY_LIFETIME = timedelta(hours=20)


Sent = TypeVar("Sent", bound=msgspec.Struct)


class NotReadyError(Exception):
    """The row depends on work not done yet (another row); look again soon, not counted as a failure."""


@dataclass(slots=True, kw_only=True)
class Attempt:
    ref: OutboxRef
    row: OutboxEntry
    account: ResolvedAccount
    database: Database
    # Where jobs of rows the attempt queues are deferred (``ring``); None: the sweep finds them.
    queue: JobQueue | None = None
    finished: bool = False

    def key(self, step: str | None = None) -> str:
        return idempotency_key(self.ref.tenant_id, self.row.id, step)

    def ring(self, session: AsyncSession, rows: Iterable[OutboxEntry]) -> None:
        """Defer the jobs of rows this attempt queued in ``session`` once it commits, as a request's
        writer does (``billplane.sync.doorbell``); a process that dies first leaves them to the sweep."""
        refs = [OutboxRef(self.ref.tenant_id, self.ref.schema, row.id) for row in rows]
        if refs and self.queue is not None:
            ring_after_commit(session, self.queue, refs)

    def refuse_forgotten_key(self, *, then: str) -> None:
        """Raised instead of calling again a row that may have called already (a call counted, or
        an attempt that ended without an answer) more than ``KEY_LIFETIME`` ago: the row fails,
        and what it was for is never made twice. ``then``: what happens instead, for its error."""
        row = self.row
        if (row.calls or row.attempts) and datetime.now(UTC) - row.created_at >= KEY_LIFETIME:
            hours = int(KEY_LIFETIME.total_seconds() // 3600)
            raise ProviderError(
                f"an earlier call, more than {hours} hours ago, may have been made; providers forget its "
                f"idempotency key, so it is not sent again: {then}"
            )

    async def pinned(self, session: AsyncSession, step: str, current: Sent) -> Sent:
        """What the row sends for ``step``: ``current`` at its first attempt, recorded in
        ``session`` (a ``read`` transaction, committed before the call); at every later attempt,
        what was recorded. A provider replays a key's first answer only for the parameters it was
        first used with (Stripe refuses others), and an answer lost leaves the object made there.
        An edit between two attempts reaches the provider as it would have after a first attempt
        that answered: through the row the edit queued, or ``missed_edits``."""
        # Locked: an attempt that outlived its lease and the one that claimed the row since must
        # not each record a different first.
        query = select(OutboxEntry.sent).where(OutboxEntry.id == self.row.id).with_for_update()
        sent = await session.scalar(query) or {}
        if step in sent:
            return msgspec.convert(sent[step], type(current))
        recorded = {**sent, step: msgspec.to_builtins(current)}
        await session.execute(update(OutboxEntry).where(OutboxEntry.id == self.row.id).values(sent=recorded))
        return current

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A short transaction before (or between) provider calls; never held across one."""
        async with owned_session(self.database, self.ref.tenant_id, self.ref.schema) as session:
            yield session

    @asynccontextmanager
    async def finish(self, *, called: bool = True) -> AsyncIterator[AsyncSession]:
        """The one transaction that records the provider's answer and marks the row done;
        ``called=False`` for a row that found nothing to send (its ``calls`` stay as they were).

        A crash before it commits leaves the row pending (its lease runs out, it is retried
        with the same idempotency key, the provider answers with the object it already made).
        """
        if called:
            faults.checkpoint(faults.AFTER_PROVIDER_CALL)
        async with owned_session(self.database, self.ref.tenant_id, self.ref.schema) as session:
            yield session
            outbox = OutboxRepository(session)
            await outbox.finish(self.row, called=called)
            await outbox.refresh_object(self.row.object_type, self.row.object_id)
        self.finished = True
