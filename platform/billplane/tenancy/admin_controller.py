"""Operator endpoints under /v1/admin (admin key only)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.api.auth import require_admin, runtime_of
from billplane.api.pagination import DEFAULT_LIMIT, Cursor, Limit, Page, decode_cursor
from billplane.api.sessions import provide_control_session
from billplane.tenancy.schemas import (
    ApiKeyCreate,
    ApiKeyCreateBody,
    ApiKeyOut,
    IssuedKeyOut,
    TenantCreateBody,
    TenantCreated,
    TenantOut,
    TenantUpdateBody,
)
from billplane.tenancy.service import TenantAdminService


async def provide_admin_service(
    request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]
) -> TenantAdminService:
    return TenantAdminService(runtime_of(request), db_session, request.app.state.key_cache)


class TenantAdminController(Controller):
    path = "/v1/admin/tenants"
    tags = ["admin"]
    guards = [require_admin]
    dependencies = {
        "db_session": Provide(provide_control_session),
        "service": Provide(provide_admin_service),
    }
    security = [{"adminKey": []}]

    @post("/", operation_id="adminCreateTenant", status_code=201)
    async def create_tenant(
        self, data: TenantCreateBody, service: NamedDependency[TenantAdminService]
    ) -> TenantCreated:
        """Create a tenant: its schema at the current revision and its first API key (shown once)."""
        tenant, key = await service.create(data.slug, data.name)
        return TenantCreated(tenant=TenantOut.of(tenant), api_key=IssuedKeyOut.of(key))

    @get("/", operation_id="adminListTenants")
    async def list_tenants(
        self,
        service: NamedDependency[TenantAdminService],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Page[TenantOut]:
        """List tenants, oldest first, one cursor page at a time."""
        tenants, next_cursor = await service.page(decode_cursor(cursor), limit)
        return Page(data=[TenantOut.of(tenant) for tenant in tenants], next_cursor=next_cursor)

    @get("/{slug:str}", operation_id="adminGetTenant")
    async def get_tenant(self, slug: FromPath[str], service: NamedDependency[TenantAdminService]) -> TenantOut:
        """One tenant, including its schema revision and last migration outcome."""
        return TenantOut.of(await service.get(slug))

    @patch("/{slug:str}", operation_id="adminUpdateTenant")
    async def update_tenant(
        self, slug: FromPath[str], data: TenantUpdateBody, service: NamedDependency[TenantAdminService]
    ) -> TenantOut:
        """Change the fields sent. `rate_limit` overrides the tenant's request rate; `null` restores the default."""
        if data.rate_limit is msgspec.UNSET:
            return TenantOut.of(await service.get(slug))
        limit = None if data.rate_limit is None else data.rate_limit.pair()
        return TenantOut.of(await service.set_rate_limit(slug, limit))

    @post("/{slug:str}/suspend", operation_id="adminSuspendTenant", status_code=200)
    async def suspend_tenant(self, slug: FromPath[str], service: NamedDependency[TenantAdminService]) -> TenantOut:
        """Suspend a tenant: its keys get 403 until it is resumed. Its data is kept."""
        return TenantOut.of(await service.set_status(slug, "suspended"))

    @post("/{slug:str}/resume", operation_id="adminResumeTenant", status_code=200)
    async def resume_tenant(self, slug: FromPath[str], service: NamedDependency[TenantAdminService]) -> TenantOut:
        """Resume a suspended tenant."""
        return TenantOut.of(await service.set_status(slug, "active"))

    @delete("/{slug:str}", operation_id="adminDeleteTenant", status_code=204)
    async def delete_tenant(self, slug: FromPath[str], service: NamedDependency[TenantAdminService]) -> None:
        """Delete a tenant for good: drops its schema with all its data, and its keys."""
        await service.delete(slug)

    @post("/{slug:str}/api-keys", operation_id="adminCreateApiKey", status_code=201)
    async def create_api_key(
        self, slug: FromPath[str], service: NamedDependency[TenantAdminService], data: ApiKeyCreateBody = None
    ) -> IssuedKeyOut:
        """Issue another API key for the tenant (for rotation, or with fewer `scopes` for one job:
        `["read"]`, `["usage-records:write"]`); the clear key is shown once. Without a body, or
        without `scopes`, the key may do everything (`["*"]`)."""
        return IssuedKeyOut.of(await service.issue_key(slug, (data or ApiKeyCreate()).scopes))

    @get("/{slug:str}/api-keys", operation_id="adminListApiKeys")
    async def list_api_keys(
        self,
        slug: FromPath[str],
        service: NamedDependency[TenantAdminService],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Page[ApiKeyOut]:
        """The tenant's keys by prefix, with scopes and revocation times, oldest first, one cursor page at
        a time; never the keys themselves."""
        keys, next_cursor = await service.key_page(slug, decode_cursor(cursor), limit)
        return Page(data=[ApiKeyOut.of(key) for key in keys], next_cursor=next_cursor)

    @delete("/{slug:str}/api-keys/{key_id:int}", operation_id="adminRevokeApiKey", status_code=204)
    async def revoke_api_key(
        self, slug: FromPath[str], key_id: FromPath[int], service: NamedDependency[TenantAdminService]
    ) -> None:
        """Revoke a key; requests with it get 401 from then on. Revoking twice is harmless."""
        await service.revoke_key(slug, key_id)
