"""Schema-per-tenant PostgreSQL for SQLAlchemy 2 async and Alembic.

Knows nothing about billing: a registry of tenants and API keys in a control schema, one module
that creates engines and tenant-scoped sessions (``database``), provisioning of new schemas from
the current models, and a migration fan-out over every tenant schema.
"""

from billplane_tenants.control import CONTROL_SCHEMA, NAMING_CONVENTION, ApiKey, ControlBase, Tenant
from billplane_tenants.database import Database, normalize_url
from billplane_tenants.keys import derive_pepper
from billplane_tenants.migrations import RunReport, TenantMigrator, TenantOutcome, TenantPlan
from billplane_tenants.naming import SLUG_PATTERN, InvalidSlugError, schema_for_slug, validate_slug
from billplane_tenants.provisioning import SchemaProvisioner
from billplane_tenants.registry import IssuedKey, KeyPrincipal, TenantExistsError, TenantRegistry

__all__ = [
    "CONTROL_SCHEMA",
    "NAMING_CONVENTION",
    "SLUG_PATTERN",
    "ApiKey",
    "ControlBase",
    "Database",
    "InvalidSlugError",
    "IssuedKey",
    "KeyPrincipal",
    "RunReport",
    "SchemaProvisioner",
    "Tenant",
    "TenantExistsError",
    "TenantMigrator",
    "TenantOutcome",
    "TenantPlan",
    "TenantRegistry",
    "derive_pepper",
    "normalize_url",
    "schema_for_slug",
    "validate_slug",
]
