"""The migration fan-out: upgrades, failures that do not stop the others, resume, dry run, status."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from billplane.audit.models import AuditEvent
from billplane.db.paths import tenant_scripts
from billplane.runtime import Runtime
from billplane_tenants import TenantMigrator, TenantOutcome, TenantPlan
from tests.conftest import unique_slug

NEW_REVISION = '''"""add a note column and an index"""
import sqlalchemy as sa
from alembic import op

revision = "tenant_9001"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("audit_log", sa.Column("note", sa.Text(), nullable=True))
    op.create_index("ix_audit_log_note", "audit_log", ["note"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_note", "audit_log")
    op.drop_column("audit_log", "note")
'''


def scripts_with_new_revision(tmp_path: Path) -> ScriptDirectory:
    """The real tenant track plus one more revision, in a scratch copy."""
    target = tmp_path / "tenant"
    shutil.copytree(tenant_scripts(), target, ignore=shutil.ignore_patterns("__pycache__"))
    head = ScriptDirectory(str(target)).get_current_head()
    (target / "versions" / "tenant_9001_note.py").write_text(NEW_REVISION.format(head=head))
    return ScriptDirectory(str(target))


@pytest.fixture
def migrator(runtime: Runtime, tmp_path: Path) -> TenantMigrator:
    return TenantMigrator(runtime.database, scripts_with_new_revision(tmp_path))


async def _tenants(runtime: Runtime, count: int) -> list[str]:
    slugs = []
    async with runtime.database.control_session() as session:
        for _ in range(count):
            tenant, _ = await runtime.registry.create(session, unique_slug("fan"), "Fan")
            slugs.append(tenant.slug)
    return slugs


async def _columns(runtime: Runtime, slug: str) -> set[str]:
    async with runtime.database.transaction() as connection:
        rows = await connection.execute(
            text("SELECT column_name FROM information_schema.columns WHERE table_schema = :s"),
            {"s": f"tenant_{slug}"},
        )
        return set(rows.scalars())


async def _control_status(runtime: Runtime, slug: str) -> tuple[str | None, str | None, str | None]:
    async with runtime.database.control_session() as session:
        tenant = await runtime.registry.get(session, slug)
        assert tenant is not None
        return tenant.schema_revision, tenant.migration_status, tenant.migration_error


async def test_upgrades_every_selected_tenant_and_records_it(runtime: Runtime, migrator: TenantMigrator) -> None:
    slugs = await _tenants(runtime, 3)
    seen: list[str] = []
    report = await migrator.migrate(slugs, on_tenant=lambda outcome: seen.append(outcome.slug))
    assert [outcome.slug for outcome in report.upgraded] == slugs == seen
    assert not report.failed
    for slug in slugs:
        assert "note" in await _columns(runtime, slug)
        assert await _control_status(runtime, slug) == ("tenant_9001", "ok", None)
    async with runtime.database.control_session() as session:
        recorded = await session.scalar(
            text("SELECT count(*) FROM control.tenant_migrations WHERE run_id = :run AND status = 'ok'"),
            {"run": report.run_id},
        )
    assert recorded == 3
    again = await migrator.migrate(slugs)
    assert again.upgraded == []
    assert sorted(again.current) == sorted(slugs)
    assert again.run_id is None


async def test_a_broken_tenant_is_reported_and_the_others_go_on(runtime: Runtime, migrator: TenantMigrator) -> None:
    first, broken, last = await _tenants(runtime, 3)
    async with runtime.database.transaction() as connection:
        await connection.execute(text(f'DROP TABLE "tenant_{broken}".audit_log'))
    report = await migrator.migrate([first, broken, last])
    assert [outcome.slug for outcome in report.upgraded] == [first, last]
    assert [outcome.slug for outcome in report.failed] == [broken]
    assert "audit_log" in (report.failed[0].error or "")
    revision, status, error = await _control_status(runtime, broken)
    assert (revision, status) == (runtime.migrator.head, "failed")
    assert error
    assert "note" not in await _columns(runtime, broken)  # nothing half-applied

    # Repair the tenant and rerun: only it is migrated (the run resumes).
    async with runtime.database.transaction() as connection:
        await connection.execute(text(f'CREATE TABLE "tenant_{broken}".audit_log (id bigint, actor text)'))
    rerun = await migrator.migrate([first, broken, last])
    assert [outcome.slug for outcome in rerun.upgraded] == [broken]
    assert sorted(rerun.current) == sorted([first, last])
    assert await _control_status(runtime, broken) == ("tenant_9001", "ok", None)


async def test_dry_run_lists_pending_revisions_and_changes_nothing(runtime: Runtime, migrator: TenantMigrator) -> None:
    slugs = await _tenants(runtime, 2)
    plans = await migrator.plan(slugs)
    assert [(plan.slug, plan.current, plan.pending) for plan in plans] == [
        (slug, runtime.migrator.head, ("tenant_9001",)) for slug in slugs
    ]
    assert "note" not in await _columns(runtime, slugs[0])


async def test_multiple_heads_are_refused(runtime: Runtime, tmp_path: Path) -> None:
    scripts = scripts_with_new_revision(tmp_path)
    branch = NEW_REVISION.replace("tenant_9001", "tenant_9002").replace("ix_audit_log_note", "ix_other")
    head = runtime.migrator.head
    (Path(scripts.dir) / "versions" / "tenant_9002_branch.py").write_text(branch.format(head=head))
    with pytest.raises(RuntimeError, match="exactly one head"):
        await TenantMigrator(runtime.database, ScriptDirectory(scripts.dir)).migrate([])


DATA_REVISION = '''"""backfill from a query: needs a live connection, so it cannot be rendered offline"""
import sqlalchemy as sa
from alembic import op

revision = "tenant_9002"
down_revision = "tenant_9001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    rows = op.get_bind().execute(sa.text("SELECT count(*) FROM audit_log")).scalar_one()
    op.execute(sa.text("UPDATE audit_log SET note = :rows").bindparams(rows=str(rows)))


def downgrade() -> None:
    pass
'''


async def test_a_revision_that_reads_data_runs_online(runtime: Runtime, tmp_path: Path) -> None:
    scripts = scripts_with_new_revision(tmp_path)
    (Path(scripts.dir) / "versions" / "tenant_9002_backfill.py").write_text(DATA_REVISION)
    slugs = await _tenants(runtime, 2)
    async with runtime.database.tenant_session(f"tenant_{slugs[1]}") as session:
        session.add(AuditEvent(actor="x", action="y"))
    report = await TenantMigrator(runtime.database, ScriptDirectory(scripts.dir)).migrate(slugs)
    assert [outcome.slug for outcome in report.upgraded] == slugs, report.failed
    # The first tenant has no audit rows to update; the second's one row records its own count.
    for slug, expected in zip(slugs, [[], ["1"]], strict=True):
        async with runtime.database.transaction() as connection:
            notes = await connection.execute(text(f'SELECT DISTINCT note FROM "tenant_{slug}".audit_log'))
            assert list(notes.scalars()) == expected
        assert await _control_status(runtime, slug) == ("tenant_9002", "ok", None)


async def test_a_stale_plan_changes_nothing(runtime: Runtime, migrator: TenantMigrator) -> None:
    """The guard in each tenant's script: the schema must still be at the revision planned."""
    (slug,) = await _tenants(runtime, 1)
    (plan,) = await migrator.plan([slug])
    async with runtime.database.transaction() as connection:  # someone moved it meanwhile
        await connection.execute(text(f"UPDATE \"tenant_{slug}\".alembic_version SET version_num = 'tenant_0001'"))
    async with runtime.database.dedicated_connection(statement_cache_size=0) as connection:
        outcome = await connection.run_sync(migrator._upgrade_one, plan)  # noqa: SLF001 - the guard itself
    assert outcome.error is not None
    assert "no longer at the planned revision" in outcome.error
    assert "note" not in await _columns(runtime, slug)


async def test_a_tenant_deleted_during_the_run_does_not_stop_it(
    runtime: Runtime, migrator: TenantMigrator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An operator may delete a tenant while a long run goes on: its outcome is no longer recorded
    (its control row is gone), the others' are, and the run finishes."""
    gone, kept = await _tenants(runtime, 2)
    upgrade = migrator._upgrade_one  # noqa: SLF001 - the step after which the tenant goes

    def upgraded_then_deleted(connection: Connection, plan: TenantPlan) -> TenantOutcome:
        outcome = upgrade(connection, plan)
        if plan.slug == gone:
            with connection.begin():
                connection.execute(text("DELETE FROM control.tenants WHERE slug = :slug"), {"slug": gone})
        return outcome

    monkeypatch.setattr(migrator, "_upgrade_one", upgraded_then_deleted)
    report = await migrator.migrate([gone, kept])
    assert [outcome.slug for outcome in report.upgraded] == [gone, kept]
    assert await _control_status(runtime, kept) == ("tenant_9001", "ok", None)
    async with runtime.database.control_session() as session:
        recorded = await session.scalar(
            text("SELECT count(*) FROM control.tenant_migrations WHERE run_id = :run"), {"run": report.run_id}
        )
        finished = await session.scalar(
            text("SELECT finished_at IS NOT NULL FROM control.migration_runs WHERE id = :run"), {"run": report.run_id}
        )
    assert (recorded, finished) == (1, True)
