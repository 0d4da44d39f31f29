"""Operator actions on tenants; never commits (the request owns the transaction)."""

from __future__ import annotations

from litestar.exceptions import NotFoundException
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.api.auth import KeyCache
from billplane.api.pagination import page_of
from billplane.api.problems import ConflictError, FieldErrors, InvalidFieldError
from billplane.api.scopes import invalid
from billplane.runtime import Runtime
from billplane.tenancy.deletion import money_left
from billplane_tenants import ApiKey, InvalidSlugError, IssuedKey, Tenant, TenantExistsError


class TenantAdminService:
    def __init__(self, runtime: Runtime, session: AsyncSession, key_cache: KeyCache) -> None:
        self._runtime = runtime
        self._registry = runtime.registry
        self._session = session
        self._keys = key_cache

    async def create(self, slug: str, name: str) -> tuple[Tenant, IssuedKey]:
        try:
            return await self._registry.create(self._session, slug, name)
        except InvalidSlugError as exc:
            raise InvalidFieldError("slug", str(exc)) from exc
        except TenantExistsError as exc:
            raise ConflictError(str(exc)) from exc

    async def get(self, slug: str) -> Tenant:
        tenant = await self._registry.get(self._session, slug)
        if tenant is None:
            raise NotFoundException(f"no tenant with slug {slug!r}")
        return tenant

    async def page(self, after_id: int | None, limit: int) -> tuple[list[Tenant], str | None]:
        rows = await self._registry.page(self._session, after_id=after_id, limit=limit + 1)
        return page_of(rows, limit)

    async def set_status(self, slug: str, status: str) -> Tenant:
        tenant = await self._registry.set_status(self._session, await self.get(slug), status)
        self._keys.invalidate_tenant(tenant.id)
        return tenant

    async def set_rate_limit(self, slug: str, limit: tuple[int, int] | None) -> Tenant:
        tenant = await self._registry.set_rate_limit(self._session, await self.get(slug), limit)
        # This process at once; the others when the announcement commits (their key caches drop
        # the tenant's principals, which carry the limit).
        self._keys.invalidate_tenant(tenant.id)
        return tenant

    async def delete(self, slug: str) -> None:
        """409 while the tenant holds money at its providers (``deletion``): the CLI's
        ``tenants delete --force`` deletes it anyway."""
        tenant = await self.get(slug)
        left = await money_left(self._session, self._runtime.plugins, tenant)
        if left is not None:
            raise ConflictError(f"tenant {slug!r} cannot be deleted yet: {left}")
        await self._registry.delete(self._session, tenant)
        self._keys.invalidate_tenant(tenant.id)

    async def issue_key(self, slug: str, scopes: list[str]) -> IssuedKey:
        """A new key with ``scopes``: 422 naming each one that is not a scope (``scopes[1]``)."""
        errors = FieldErrors()
        for index in invalid(scopes):
            errors.add(f"scopes[{index}]", "not a scope: '*', 'read', or '<resource>:read' or ':write'")
        errors.raise_any()
        unique = list(dict.fromkeys(scopes))  # in the order given, each once
        return await self._registry.issue_key(self._session, await self.get(slug), unique)

    async def key_page(self, slug: str, after_id: int | None, limit: int) -> tuple[list[ApiKey], str | None]:
        tenant = await self.get(slug)
        keys = await self._registry.keys(self._session, tenant, after_id=after_id, limit=limit + 1)
        return page_of(keys, limit)

    async def revoke_key(self, slug: str, key_id: int) -> None:
        tenant = await self.get(slug)
        if await self._registry.revoke_key(self._session, tenant, key_id) is None:
            raise NotFoundException(f"tenant {slug!r} has no API key {key_id}")
        self._keys.invalidate_tenant(tenant.id)
