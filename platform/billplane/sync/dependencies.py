"""The request's SyncService: outbox rows in the request's transaction, for the request's tenant."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.api.auth import runtime_of
from billplane.sync.service import SyncService
from billplane.sync.writer import OutboxWriter
from billplane_tenants import KeyPrincipal


def sync_service_for(request: Request[Any, Any, Any], session: AsyncSession, principal: KeyPrincipal) -> SyncService:
    runtime = runtime_of(request)
    writer = OutboxWriter(
        session, principal.tenant_id, principal.schema_name, runtime.jobs, runtime.accounts, runtime.default_accounts
    )
    return SyncService(writer, runtime.plugins)


async def provide_sync_service(
    request: Request[Any, Any, Any],
    tenant_session: NamedDependency[AsyncSession],
    principal: NamedDependency[KeyPrincipal],
) -> SyncService:
    return sync_service_for(request, tenant_session, principal)
