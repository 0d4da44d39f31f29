"""Upgrading every tenant schema: sequential, on one reused connection, one transaction per tenant.

Alembic's ``op`` and ``context`` proxies are process-global, so two upgrades running at once in
one process execute each other's DDL (FACTS.md). Instead of one ``alembic upgrade`` per tenant
(~0.4-1 s each: a new process, env.py, a re-read of every revision file) this module loads the
revision graph once and renders, with alembic's offline mode, the SQL that takes a schema from
each revision found to the head; each tenant then gets that SQL as one script, in one round trip,
behind its advisory lock, its scope and a guard that it is still at the planned revision.
PostgreSQL runs a multi-statement script as one implicit transaction, so a failure leaves the
tenant untouched. Revisions that cannot be rendered offline (a data migration reading rows) run
online instead: a MigrationContext per tenant on the same dedicated connection, whose statement
cache is on (every revision's statements meet schemas of that revision's shape only).

Each tenant's DDL and its version stamp commit together, so a crash leaves every tenant either
migrated or untouched, and a rerun resumes. The tenant's own version table is the truth; the
control schema's record of it (tenants.schema_revision, tenant_migrations) is written in batches
and reconciled from the version tables at the start of every run.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from alembic.migration import MigrationContext
from alembic.operations import Operations
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, bindparam, func, insert, select, text, update
from sqlalchemy.util import await_only

from billplane_tenants.control import MigrationRun, Tenant, TenantMigration
from billplane_tenants.database import Database, scope_connection, scoped_script
from billplane_tenants.naming import quoted_schema
from billplane_tenants.provisioning import VERSION_TABLE

# Namespace for pg_advisory_xact_lock(int, int): two concurrent runs never migrate one tenant twice.
_LOCK_NAMESPACE = 0x6270
_REVISION_ID = re.compile(r"^[A-Za-z0-9_]{1,32}$")
_REVISION_BATCH = 500
_RECORD_BATCH = 200
_STATEMENT_CACHE_SIZE = 500
_ERROR_LIMIT = 2000


class _PlannedMigrationContext(MigrationContext):
    """Skips alembic's has-table catalog query when the plan already read the version table.

    That query is a third of the per-tenant cost with many schemas; the plan saw the table
    moments ago, under the same run.
    """

    def __init__(self, connection: Connection, opts: dict[str, Any], *, version_table_seen: bool) -> None:
        # What MigrationContext.configure() does for a connection, for this subclass.
        super().__init__(connection.dialect, connection, opts)
        self.version_table_seen = version_table_seen

    def _has_version_table(self) -> bool:
        return self.version_table_seen or super()._has_version_table()


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
        self._scripts_by_start: dict[str | None, str | None] = {}

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
        async with self._database.dedicated_connection(statement_cache_size=_STATEMENT_CACHE_SIZE) as connection:
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
        unrecorded: list[tuple[TenantPlan, TenantOutcome]] = []
        for plan in todo:
            outcome = self._upgrade_one(connection, plan)
            (report.upgraded if outcome.ok else report.failed).append(outcome)
            unrecorded.append((plan, outcome))
            if len(unrecorded) == _RECORD_BATCH:
                self._record(connection, run_id, unrecorded)
                unrecorded.clear()
            if on_tenant is not None:
                on_tenant(outcome)
        self._record(connection, run_id, unrecorded)
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

    def _upgrade_one(self, connection: Connection, plan: TenantPlan) -> TenantOutcome:
        try:
            script = self._rendered(plan.current)
            if script is None:
                with connection.begin():
                    scope_connection(connection, plan.schema_name, lock=(_LOCK_NAMESPACE, plan.tenant_id))
                    self._run_alembic(connection, plan)
            else:
                self._run_script(connection, plan, script)
        except Exception as exc:  # one tenant's failure is reported, never fatal to the run
            return TenantOutcome(plan.slug, plan.current, plan.current, _describe(exc))
        return TenantOutcome(plan.slug, plan.current, self.head)

    def _rendered(self, current: str | None) -> str | None:
        """The SQL from ``current`` to head, rendered once per revision; None if it cannot be."""
        if current not in self._scripts_by_start:
            self._scripts_by_start[current] = _render_offline(self._scripts, current, self.head)
        return self._scripts_by_start[current]

    def _run_script(self, connection: Connection, plan: TenantPlan, script: str) -> None:
        expected = "IS NOT NULL" if plan.current is None else f"IS DISTINCT FROM '{_checked_revision(plan.current)}'"
        version = (
            "to_regclass('alembic_version')" if plan.current is None else "(SELECT version_num FROM alembic_version)"
        )
        guard = (
            f"DO $guard$ BEGIN IF {version} {expected} THEN "
            "RAISE EXCEPTION 'the schema is no longer at the planned revision; rerun the migration'; "
            "END IF; END $guard$;\n"
        )
        # One simple-protocol query: PostgreSQL runs it as a single implicit transaction.
        driver = connection.connection.driver_connection
        if driver is None:
            raise RuntimeError("the migration connection was closed")
        lock = (_LOCK_NAMESPACE, plan.tenant_id)
        await_only(driver.execute(scoped_script(plan.schema_name, guard + script, lock=lock)))

    def _run_alembic(self, connection: Connection, plan: TenantPlan) -> None:
        """Upgrade the scoped schema to head; alembic re-reads the version under the lock."""

        def upgrade(revision: Any, _context: MigrationContext) -> Any:
            return self._scripts._upgrade_revs(self.head, revision)  # noqa: SLF001 - alembic's own upgrade path

        context = _PlannedMigrationContext(
            connection,
            {"version_table_schema": plan.schema_name, "fn": upgrade, "transactional_ddl": True},
            version_table_seen=plan.current is not None,
        )
        with Operations.context(context):
            context.run_migrations()

    def _record(self, connection: Connection, run_id: int, outcomes: list[tuple[TenantPlan, TenantOutcome]]) -> None:
        """Write a batch of outcomes to the control schema in one transaction; a tenant deleted
        since it was planned has no row to record them on, and is left out."""
        if not outcomes:
            return
        with connection.begin():
            # Locked against a deletion until these records commit (KEY SHARE: updates may go on).
            wanted = [plan.tenant_id for plan, _ in outcomes]
            locked = select(Tenant.id).where(Tenant.id.in_(wanted)).with_for_update(read=True, key_share=True)
            live = set(connection.execute(locked).scalars())
            self._record_rows(connection, run_id, [(plan, done) for plan, done in outcomes if plan.tenant_id in live])

    def _record_rows(
        self, connection: Connection, run_id: int, outcomes: list[tuple[TenantPlan, TenantOutcome]]
    ) -> None:
        if not outcomes:
            return
        rows = [
            {
                "b_tenant": plan.tenant_id,
                "b_from_revision": outcome.from_revision,
                "b_to_revision": outcome.to_revision,
                "b_status": "ok" if outcome.ok else "failed",
                "b_error": outcome.error,
            }
            for plan, outcome in outcomes
        ]
        connection.execute(
            update(Tenant)
            .where(Tenant.id == bindparam("b_tenant"))
            .values(
                schema_revision=bindparam("b_to_revision"),
                migration_status=bindparam("b_status"),
                migration_error=bindparam("b_error"),
                migrated_at=func.now(),
            ),
            rows,
        )
        connection.execute(
            insert(TenantMigration).values(
                run_id=run_id,
                tenant_id=bindparam("b_tenant"),
                from_revision=bindparam("b_from_revision"),
                to_revision=bindparam("b_to_revision"),
                status=bindparam("b_status"),
                error=bindparam("b_error"),
            ),
            rows,
        )


def _render_offline(scripts: ScriptDirectory, current: str | None, head: str) -> str | None:
    """The upgrade from ``current`` to ``head`` as SQL text (alembic offline mode), or None."""

    def upgrade(revision: Any, _context: MigrationContext) -> Any:
        return scripts._upgrade_revs(head, revision)  # noqa: SLF001 - alembic's own upgrade path

    buffer = io.StringIO()
    context = MigrationContext.configure(
        dialect_name="postgresql",
        opts={
            "as_sql": True,
            "output_buffer": buffer,
            "starting_rev": current,
            "destination_rev": head,
            "fn": upgrade,
            "literal_binds": True,
            "transactional_ddl": False,
        },
    )
    try:
        with Operations.context(context):
            context.run_migrations()
    except Exception:  # a revision that needs a live connection: such tenants migrate online
        return None
    return buffer.getvalue()


def _checked_revision(revision: str) -> str:
    if not _REVISION_ID.fullmatch(revision):
        raise ValueError(f"unexpected revision id {revision!r}")
    return revision


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
