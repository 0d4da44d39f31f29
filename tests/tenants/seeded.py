"""A tenant with a few audit events: rows each test can tell apart by tenant."""

from __future__ import annotations

from billplane.audit.models import AuditEvent
from billplane.runtime import Runtime
from tests.conftest import unique_slug


async def seeded_tenant(runtime: Runtime, rows: int, prefix: str) -> str:
    """A new tenant's schema holding ``rows`` audit events, each with the tenant's slug as actor."""
    async with runtime.database.control_session() as session:
        tenant, _ = await runtime.registry.create(session, unique_slug(prefix), "Seeded")
    async with runtime.database.tenant_session(tenant.schema_name) as session:
        session.add_all(AuditEvent(actor=tenant.slug, action=f"seed.{i}") for i in range(rows))
    return tenant.schema_name
