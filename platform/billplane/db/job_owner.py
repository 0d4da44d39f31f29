"""Whether a queued job's tenant still owns the schema the job names.

A job carries (tenant id, schema, row id). A tenant's schema is named after its slug, so once a
tenant is deleted, a new tenant given the same slug gets the same schema name, its row ids
starting again at 1: a job the deleted tenant left queued (a retry scheduled up to hours ahead)
would claim the new tenant's row of the same id, and fail it against the old tenant's accounts
and secrets. Every job that works on a tenant's rows asks this first, in its own transaction,
and is dropped when the tenant that queued it is gone.
"""

from __future__ import annotations

from sqlalchemy import bindparam, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from billplane_tenants import Tenant

_OWNS = select(exists().where(Tenant.id == bindparam("tenant_id"), Tenant.schema_name == bindparam("schema")))


async def still_owned(session: AsyncSession, tenant_id: int, schema: str) -> bool:
    """Whether tenant ``tenant_id`` exists and ``schema`` is its schema."""
    return bool(await session.scalar(_OWNS, {"tenant_id": tenant_id, "schema": schema}))
