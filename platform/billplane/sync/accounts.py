"""Which provider accounts a tenant's new objects are mirrored to, cached per process.

``AccountSource.default_accounts`` decrypts credentials and builds adapters; a customer create
needs only the account ids, and must cost the same with an account connected as without. So the
ids are read with the request's own session (control tables name their schema, so a tenant
transaction reaches them: no second pooled connection, which a fixed pool would deadlock on
under load) and kept for a few seconds per tenant (like API keys): an account connected moments
ago is picked up within ``ttl_seconds``, and ``invalidate`` drops a tenant's entry at once in this
process.
"""

from __future__ import annotations

import time

from sqlalchemy.ext.asyncio import AsyncSession

from billplane.provider_accounts.resolved import AccountSource

_MAX_TENANTS = 10_000


class DefaultAccountCache:
    def __init__(self, ttl_seconds: float = 5.0) -> None:
        self._ttl = ttl_seconds
        self._entries: dict[int, tuple[float, tuple[int, ...]]] = {}

    async def ids(self, source: AccountSource | None, session: AsyncSession, tenant_id: int) -> tuple[int, ...]:
        if source is None:  # this process calls no provider at all
            return ()
        now = time.monotonic()
        cached = self._entries.get(tenant_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        ids = await source.default_account_ids(session, tenant_id)
        if len(self._entries) >= _MAX_TENANTS:
            self._entries.clear()  # bounded; a refill costs one lookup per tenant
        self._entries[tenant_id] = (now + self._ttl, ids)
        return ids

    def invalidate(self, tenant_id: int | None = None) -> None:
        if tenant_id is None:
            self._entries.clear()
        else:
            self._entries.pop(tenant_id, None)
