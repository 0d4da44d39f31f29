"""Every tenant model, imported so ``tenant_metadata`` is complete (provisioning, autogenerate)."""

from __future__ import annotations

from billplane.audit.models import AuditEvent
from billplane.db.base import TenantBase

tenant_metadata = TenantBase.metadata

__all__ = ["AuditEvent", "tenant_metadata"]
