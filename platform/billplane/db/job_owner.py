"""Transactions of work queued for a tenant, which hold that tenant while they run.

A job carries (tenant id, schema, row id), and so does an inbound webhook once its account is
resolved. A tenant's schema is named after its slug, so once a tenant is deleted, a new tenant
given the same slug gets the same schema name, its row ids starting again at 1: work the deleted
tenant left (a retry scheduled hours ahead, or an attempt whose provider call was in flight when
the tenant went) would write into the new tenant's row of the same id.

So every transaction of such work begins by taking a KEY SHARE lock on its tenant's control row
(``owned_session``). The tenant's deletion locks that row first (``TenantRegistry.delete``), so
it waits for transactions already holding it, and a transaction that begins after it finds no
row and raises ``TenantGoneError`` before touching the schema.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from billplane_tenants import Database, Tenant

# The tenant row (by id and schema), KEY SHARE locked; also taken by requests that write control rows
# (``billplane.tenancy.holding``).
TENANT_HOLD_QUERY = (
    select(Tenant.id)
    .where(Tenant.id == bindparam("tenant_id"), Tenant.schema_name == bindparam("schema"))
    .with_for_update(read=True, key_share=True)
)


class TenantGoneError(Exception):
    """The tenant the work was queued for no longer owns its schema: the work is dropped."""

    def __init__(self, tenant_id: int, schema: str) -> None:
        super().__init__(f"tenant {tenant_id} is gone (schema {schema})")


@asynccontextmanager
async def owned_session(database: Database, tenant_id: int, schema: str) -> AsyncIterator[AsyncSession]:
    """One transaction in ``schema`` that holds tenant ``tenant_id``; ``TenantGoneError`` if it is gone."""
    async with database.tenant_session(schema) as session:
        if await session.scalar(TENANT_HOLD_QUERY, {"tenant_id": tenant_id, "schema": schema}) is None:
            raise TenantGoneError(tenant_id, schema)
        yield session
