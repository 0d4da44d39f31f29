"""Upgrading every tenant schema: sequential, on one reused connection, one transaction per tenant.

Alembic's ``op`` and ``context`` proxies are process-global, so two upgrades running at once in
one process execute each other's DDL (FACTS.md). Instead of one ``alembic upgrade`` per tenant
(~0.4-1 s each: a new process, env.py, a re-read of every revision file) this module loads the
revision graph once and drives a MigrationContext per tenant on the same connection. Each
tenant's DDL, its version stamp and its status row in the control schema commit together, so a
crash leaves every tenant either migrated-and-recorded or untouched, and a rerun resumes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from alembic.migration import MigrationContext
from alembic.operations import Operations
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, func, insert, select, text, update

from billplane_tenants.control import MigrationRun, Tenant, TenantMigration
from billplane_tenants.database import Database, scope_connection
from billplane_tenants.naming import quoted_schema
from billplane_tenants.provisioning import VERSION_TABLE

# Namespace for pg_advisory_xact_lock(int, int): two concurrent runs never migrate one tenant twice.
_LOCK_NAMESPACE = 0x6270
_REVISION_BATCH = 500
_ERROR_LIMIT = 2000


@dataclass(frozen=True, slots=True)
class TenantPlan:
    tenant_id: int
    slug: str
    schema_name: str
    current: str | None
    pending: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TenantOutcome:
    slug: str
    from_revision: str | None
    to_revision: str | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(slots=True)
class RunReport:
    run_id: int | None
    head: str
    current: list[str] = field(default_factory=list)
    upgraded: list[TenantOutcome] = field(default_factory=list)
    failed: list[TenantOutcome] = field(default_factory=list)


class TenantMigrator:
    def __init__(self, database: Database, scripts: ScriptDirectory) -> None:
        self._database = database
        self._scripts = scripts

    @property
    def head(self) -> str:
        heads = self._scripts.get_heads()
        if len(heads) != 1:
            msg = f"the tenant track must have exactly one head, found {heads}: merge them first"
            raise RuntimeError(msg)
        return heads[0]

    async def plan(self, slugs: Sequence[str] | None = None) -> list[TenantPlan]:
        """Every selected tenant with its current revision and the revisions still to apply."""
        async with self._database.engine.connect() as connection:
            return await connection.run_sync(self._plan, slugs)

    async def migrate(
        self,
        slugs: Sequence[str] | None = None,
        *,
        on_tenant: Callable[[TenantOutcome], None] | None = None,
        on_plan: Callable[[list[TenantPlan]], None] | None = None,
    ) -> RunReport:
        """Upgrade the selected (default: all) tenants to head; one failure never stops the rest."""
        async with self._database.engine.connect() as connection:
            return await connection.run_sync(self._migrate, slugs, on_tenant, on_plan)

    # -- sync internals, run on one connection inside run_sync ---------------------------------

    def _plan(self, connection: Connection, slugs: Sequence[str] | None) -> list[TenantPlan]:
        query = select(Tenant.id, Tenant.slug, Tenant.schema_name).order_by(Tenant.id)
        if slugs is not None:
            query = query.where(Tenant.slug.in_(slugs))
        tenants = connection.execute(query).all()
        revisions = self._current_revisions(connection, [row.schema_name for row in tenants])
        head = self.head
        plans = []
        for row in tenants:
            current = revisions.get(row.schema_name)
            pending = () if current == head else self._pending(current)
            plans.append(TenantPlan(row.id, row.slug, row.schema_name, current, pending))
        return plans

    def _pending(self, current: str | None) -> tuple[str, ...]:
        try:
            steps = self._scripts.iterate_revisions(self.head, current)
            return tuple(reversed([step.revision for step in steps]))
        except Exception:  # an unknown revision in the schema: the upgrade will report it
            return (self.head,)

    def _current_revisions(self, connection: Connection, schemas: list[str]) -> dict[str, str | None]:
        """Read every schema's version table in a few UNION queries instead of one query each."""
        stamped = set(
            connection.execute(
                text(
                    "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE c.relname = :table AND n.nspname = ANY(:schemas)"
                ),
                {"table": VERSION_TABLE, "schemas": schemas},
            ).scalars()
        )
        found: dict[str, str | None] = {}
        ordered = [schema for schema in schemas if schema in stamped]
        for start in range(0, len(ordered), _REVISION_BATCH):
            batch = ordered[start : start + _REVISION_BATCH]
            union = " UNION ALL ".join(
                f"SELECT '{schema}' AS s, version_num FROM {quoted_schema(schema)}.{VERSION_TABLE}" for schema in batch
            )
            found.update(dict(connection.execute(text(union)).all()))
            # A read holds a lock on every table it touched until its transaction ends: end it per
            # batch, or 10,000 tenants would need 10,000 locks at once (max_locks_per_transaction).
            connection.rollback()
        return found

    def _migrate(
        self,
        connection: Connection,
        slugs: Sequence[str] | None,
        on_tenant: Callable[[TenantOutcome], None] | None,
        on_plan: Callable[[list[TenantPlan]], None] | None,
    ) -> RunReport:
        plans = self._plan(connection, slugs)
        connection.rollback()  # end the read-only autobegun transaction; each step below has its own
        head = self.head
        todo = [plan for plan in plans if plan.pending]
        report = RunReport(run_id=None, head=head)
        report.current = [plan.slug for plan in plans if not plan.pending]
        self._record_current(connection, [plan for plan in plans if not plan.pending], head)
        if on_plan is not None:
            on_plan(todo)
        if not todo:
            return report
        with connection.begin():
            run_id = connection.execute(
                insert(MigrationRun).values(target_revision=head, total=len(todo)).returning(MigrationRun.id)
            ).scalar_one()
        report.run_id = run_id
        for plan in todo:
            outcome = self._upgrade_one(connection, run_id, plan)
            (report.upgraded if outcome.ok else report.failed).append(outcome)
            if on_tenant is not None:
                on_tenant(outcome)
        with connection.begin():
            connection.execute(
                update(MigrationRun)
                .where(MigrationRun.id == run_id)
                .values(finished_at=func.now(), upgraded=len(report.upgraded), failed=len(report.failed))
            )
        return report

    def _record_current(self, connection: Connection, plans: Iterable[TenantPlan], head: str) -> None:
        ids = [plan.tenant_id for plan in plans]
        if not ids:
            return
        with connection.begin():
            connection.execute(
                update(Tenant)
                .where(Tenant.id.in_(ids), Tenant.schema_revision.is_distinct_from(head))
                .values(schema_revision=head, migration_status="ok", migration_error=None)
            )

    def _upgrade_one(self, connection: Connection, run_id: int, plan: TenantPlan) -> TenantOutcome:
        try:
            with connection.begin():
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:namespace, :tenant)"),
                    {"namespace": _LOCK_NAMESPACE, "tenant": plan.tenant_id},
                )
                scope_connection(connection, plan.schema_name)
                before, after = self._run_alembic(connection, plan.schema_name)
                self._record(connection, run_id, plan, TenantOutcome(plan.slug, before, after))
                return TenantOutcome(plan.slug, before, after)
        except Exception as exc:  # one tenant's failure is reported, never fatal to the run
            outcome = TenantOutcome(plan.slug, plan.current, plan.current, _describe(exc))
            with connection.begin():
                self._record(connection, run_id, plan, outcome)
            return outcome

    def _run_alembic(self, connection: Connection, schema: str) -> tuple[str | None, str | None]:
        def upgrade(revision: Any, _context: MigrationContext) -> Any:
            return self._scripts._upgrade_revs(self.head, revision)  # noqa: SLF001 - alembic's own upgrade path

        context = MigrationContext.configure(
            connection=connection,
            opts={"version_table_schema": schema, "fn": upgrade, "transactional_ddl": True},
        )
        before = context.get_current_revision()
        with Operations.context(context):
            context.run_migrations()
        return before, context.get_current_revision()

    def _record(self, connection: Connection, run_id: int, plan: TenantPlan, outcome: TenantOutcome) -> None:
        status = "ok" if outcome.ok else "failed"
        connection.execute(
            update(Tenant)
            .where(Tenant.id == plan.tenant_id)
            .values(
                schema_revision=outcome.to_revision,
                migration_status=status,
                migration_error=outcome.error,
                migrated_at=func.now(),
            )
        )
        connection.execute(
            insert(TenantMigration).values(
                run_id=run_id,
                tenant_id=plan.tenant_id,
                from_revision=outcome.from_revision,
                to_revision=outcome.to_revision,
                status=status,
                error=outcome.error,
            )
        )


def _describe(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    message = f"{type(orig or exc).__name__}: {orig or exc}"
    return message[:_ERROR_LIMIT]


async def upgrade_control(database: Database, script_location: str) -> None:
    """Upgrade the control track to head through its env.py, on a connection of ``database``."""
    from alembic import command  # noqa: PLC0415 - only the CLI and start-up need the command layer
    from alembic.config import Config  # noqa: PLC0415

    def run(connection: Connection) -> None:
        config = Config()
        config.set_main_option("script_location", script_location)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")

    async with database.engine.connect() as connection:
        await connection.run_sync(run)
        await connection.commit()
