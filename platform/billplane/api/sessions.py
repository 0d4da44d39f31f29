"""Request-scoped database sessions: the transaction belongs to the request.

Litestar closes these generators before the response is sent, throwing in any exception the
handler raised, so the request commits once on success and rolls back on any error.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from litestar import Request
from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.api.auth import runtime_of
from billplane_tenants import KeyPrincipal


async def provide_control_session(request: Request[Any, Any, Any]) -> AsyncGenerator[AsyncSession, None]:
    async with runtime_of(request).database.control_session() as session:
        yield session


async def provide_tenant_session(
    request: Request[Any, Any, Any], principal: NamedDependency[KeyPrincipal]
) -> AsyncGenerator[AsyncSession, None]:
    async with runtime_of(request).database.tenant_session(principal.schema_name) as session:
        yield session
