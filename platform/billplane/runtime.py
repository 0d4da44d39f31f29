"""The long-lived objects one billplane process shares: database, tenant registry, migrator."""

from __future__ import annotations

from dataclasses import dataclass, field

from billplane.db.paths import tenant_scripts
from billplane.db.tenant_models import tenant_metadata
from billplane.idempotency.sealing import ResponseSealer
from billplane.plugins.host import PluginHost
from billplane.provider_accounts.resolved import AccountSource
from billplane.settings import Settings
from billplane.sync.accounts import DefaultAccountCache
from billplane.sync.options import SyncOptions
from billplane.sync.queue import JobQueue
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
    # The job queue (provider sync, webhook events); opens its connections on first use.
    jobs: JobQueue
    # Where provider accounts and their adapters come from; None: no provider is ever called.
    accounts: AccountSource | None = None
    default_accounts: DefaultAccountCache = field(default_factory=DefaultAccountCache)
    sync_options: SyncOptions = field(default_factory=SyncOptions)

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
        jobs = JobQueue(settings.database.listening_url)  # procrastinate's worker LISTENs
        runtime = cls(settings, database, provisioner, registry, migrator, sealer, plugins, jobs)
        # Imported here: the account source needs this module's Runtime type.
        from billplane.provider_accounts.source import DatabaseAccountSource  # noqa: PLC0415

        runtime.accounts = DatabaseAccountSource(runtime)
        return runtime

    async def close(self) -> None:
        await self.jobs.close()
        await self.database.dispose()
