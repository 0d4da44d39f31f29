"""The long-lived objects one billplane process shares: database, tenant registry, migrator."""

from __future__ import annotations

from dataclasses import dataclass

from billplane.db.paths import tenant_scripts
from billplane.db.tenant_models import tenant_metadata
from billplane.idempotency.sealing import ResponseSealer
from billplane.plugins.host import PluginHost
from billplane.settings import Settings
from billplane_tenants import Database, SchemaProvisioner, TenantMigrator, TenantRegistry, derive_pepper


@dataclass(slots=True)
class Runtime:
    settings: Settings
    database: Database
    provisioner: SchemaProvisioner
    registry: TenantRegistry
    migrator: TenantMigrator
    sealer: ResponseSealer
    plugins: PluginHost

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        database = Database(
            settings.database.url,
            pool_size=settings.database.pool_size,
            max_overflow=settings.database.max_overflow,
        )
        provisioner = SchemaProvisioner(tenant_metadata, tenant_scripts())
        registry = TenantRegistry(provisioner, derive_pepper(settings.security.secret_key))
        migrator = TenantMigrator(database, provisioner.scripts)
        sealer = ResponseSealer(settings.security.secret_key)
        plugins = PluginHost.discover(settings.providers.allowlist)
        return cls(settings, database, provisioner, registry, migrator, sealer, plugins)

    async def close(self) -> None:
        await self.database.dispose()
