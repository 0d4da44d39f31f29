"""Tenant requests that write a control row naming their tenant hold the tenant's row first.

A provider account (``control.provider_accounts``) names its tenant by a foreign key, so writing one
locks the tenant's row (KEY SHARE). Deleting the tenant locks that row (FOR UPDATE), then drops its
schema (``TenantRegistry.delete``). A request that had first touched one of its tenant's tables
(its Idempotency-Key, a subscription, an event's endpoints) waited for the deletion's row lock while
the deletion's drop waited for the request's table: a deadlock, one of the two failed. One that
wrote after the deletion committed failed on the foreign key: a 500.

So a route that writes such rows is marked ``opt=HOLDS_TENANT``, and its session takes the KEY SHARE
lock before any other statement, before the Idempotency-Key's (``billplane.api.sessions``), as the
queued work of ``billplane.db.job_owner`` does: a deletion waits for the request to end, and a
request that begins after the deletion waits for it, then finds the tenant gone and is answered as
any key of a deleted tenant is (401). Only those routes: every other request makes no round trip
for it. KEY SHARE lets the operator's other changes of the row (status, rate limit) go on.
"""

from __future__ import annotations

from typing import Any

from litestar.exceptions import NotAuthorizedException
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.db.job_owner import TENANT_HOLD_QUERY
from billplane_tenants import KeyPrincipal

TENANT_HOLD = "tenant_hold"
HOLDS_TENANT: dict[str, Any] = {TENANT_HOLD: True}


async def hold_tenant(session: AsyncSession, principal: KeyPrincipal) -> None:
    """Lock ``principal``'s tenant row until the request's transaction ends; 401 if it is gone."""
    held = await session.scalar(TENANT_HOLD_QUERY, {"tenant_id": principal.tenant_id, "schema": principal.schema_name})
    if held is None:  # deleted while its key was cached, or while this request waited for the deletion
        raise NotAuthorizedException("unknown or revoked API key")
