"""Writing outbox rows in the caller's transaction.

Creates queue their rows inside the INSERT itself (``with_outbox_rows``: the workers hear of them
through NOTIFY). Every other write adds rows here, and their jobs are rung once it commits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from billplane.provider_accounts.resolved import AccountSource
from billplane.sync.accounts import DefaultAccountCache
from billplane.sync.doorbell import ring_after_commit
from billplane.sync.models import OutboxEntry
from billplane.sync.queue import JobQueue
from billplane.sync.refs import OutboxRef
from billplane.sync.repository import OutboxRepository, queued_insert_params


@dataclass(slots=True)
class OutboxWriter:
    session: AsyncSession
    tenant_id: int
    schema: str
    queue: JobQueue
    accounts: AccountSource | None
    defaults: DefaultAccountCache

    @property
    def repository(self) -> OutboxRepository:
        return OutboxRepository(self.session)

    async def default_account_ids(self) -> tuple[int, ...]:
        return await self.defaults.ids(self.accounts, self.session, self.tenant_id)

    async def live(self, account_ids: Iterable[int]) -> list[int]:
        """``account_ids`` without the deleted accounts, in their order. An object's mapping to an
        account outlives the account's deletion; a row sent there would only fail, and show the
        object failed. Without an account source, nothing is left out."""
        wanted = list(account_ids)
        if self.accounts is None or not wanted:
            return wanted
        live = await self.accounts.live_account_ids(self.session, self.tenant_id, wanted)
        return [account for account in wanted if account in live]

    async def insert_params(self) -> dict[str, Any]:
        """Parameters of an INSERT wrapped by ``with_outbox_rows``: its rows go to the default accounts."""
        return queued_insert_params(self.tenant_id, self.schema, await self.default_account_ids())

    async def write(self, kind: str, object_id: int, account_ids: Iterable[int]) -> list[OutboxEntry]:
        rows = await self.repository.add(kind, object_id, account_ids)
        self.ring([row.id for row in rows])
        return rows

    def ring(self, outbox_ids: Iterable[int]) -> None:
        refs = [OutboxRef(self.tenant_id, self.schema, outbox_id) for outbox_id in outbox_ids]
        if refs:
            ring_after_commit(self.session, self.queue, refs)
