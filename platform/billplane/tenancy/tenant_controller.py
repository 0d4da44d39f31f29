"""The calling tenant's view of itself (/v1/tenant)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException

from billplane.api.auth import runtime_of
from billplane.tenancy.schemas import CurrentTenant
from billplane_tenants import KeyPrincipal


class CurrentTenantController(Controller):
    path = "/v1/tenant"
    tags = ["tenant"]
    security = [{"apiKey": []}]

    @get("/", operation_id="getCurrentTenant")
    async def get_current_tenant(
        self, request: Request[Any, Any, Any], principal: NamedDependency[KeyPrincipal]
    ) -> CurrentTenant:
        """The tenant that owns the API key in the Authorization header."""
        runtime = runtime_of(request)
        async with runtime.database.control_session() as session:
            tenant = await runtime.registry.get(session, principal.slug)
        if tenant is None:  # deleted after its key was cached
            raise NotAuthorizedException("unknown or revoked API key")
        return CurrentTenant(
            id=tenant.id, slug=tenant.slug, name=tenant.name, status=tenant.status, created_at=tenant.created_at
        )
