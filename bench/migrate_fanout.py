"""Benchmark: ``billplane tenants migrate`` across many tenant schemas, against plain SQL.

What it does, in order:

1. creates a throwaway database next to ``--database-url`` (loopback only), upgrades its control
   schema, and creates ``--tenants`` tenants (default 1,000) with ``TenantRegistry.create``,
   ``--batch`` tenants per transaction, then analyzes the catalogs as autovacuum would have
   (``--no-analyze`` skips it: see ANALYZE_AFTER_SETUP);
2. with every tenant at the real head, times a migrate with nothing to apply: in process
   (``TenantMigrator.migrate()`` and ``plan()`` alone, on the real track) and through the real
   CLI (``uv run billplane tenants migrate`` and the virtualenv's ``billplane`` script, process
   start-up included);
3. ``--repeat`` times (default 3), interleaved so drift hits all of them alike:
   - ``TenantMigrator.migrate()`` with a scratch copy of the tenant track plus one new revision
     (``ADD COLUMN note text`` and an index on it, on ``audit_log``), every tenant upgraded;
   - ``migrate()`` again right after, with nothing to apply;
   - the ceiling: the same DDL (another column name) as plain SQL through raw asyncpg, one
     transaction per schema, sequential on one connection, each schema one round trip;
   every timed run opens its own connection, as a CLI run would;
4. prints Markdown tables and the command, then drops the database, also on error, Ctrl-C,
   SIGTERM or ``--time-limit``.

Run:  uv run python bench/migrate_fanout.py [--tenants 1000 --repeat 3 --cli-repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import secrets
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import alembic
import asyncpg
import sqlalchemy
from alembic.script import ScriptDirectory
from sqlalchemy import event, select
from sqlalchemy.engine import URL, Engine, make_url

from billplane.db.paths import control_scripts, tenant_scripts
from billplane.db.tenant_models import tenant_metadata
from billplane_tenants import (
    Database,
    RunReport,
    SchemaProvisioner,
    Tenant,
    TenantMigrator,
    TenantRegistry,
    derive_pepper,
)
from billplane_tenants.migrations import upgrade_control

DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
REPO = Path(__file__).resolve().parent.parent
# Only for API-key digests of throwaway tenants; the CLI needs one to start at all.
BENCH_SECRET = "bench-secret-key-" + "x" * 32
RATIO_TARGET = 3.0
NOOP_TARGET_S = 2.0
CLI_TIMEOUT_S = 300.0
# What autovacuum would have analyzed after 1,000 new schemas. Without fresh statistics on
# pg_class and pg_namespace, alembic's has_table query (3 per tenant) picks a plan that scans one
# row per tenant schema: about 2.0 ms a call at 1,000 tenants instead of 0.6 ms. Servers with
# autovacuum off (this project's CI server) would otherwise measure that instead of the code.
ANALYZE_AFTER_SETUP = (
    "ANALYZE pg_catalog.pg_class, pg_catalog.pg_namespace, pg_catalog.pg_attribute, pg_catalog.pg_index, "
    "pg_catalog.pg_depend, pg_catalog.pg_type, pg_catalog.pg_constraint, control.tenants, control.api_keys"
)

NEW_REVISION = '''"""bench: add a {column} column and an index"""
import sqlalchemy as sa
from alembic import op

revision = "{revision}"
down_revision = "{down_revision}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("audit_log", sa.Column("{column}", sa.Text(), nullable=True))
    op.create_index("ix_audit_log_{column}", "audit_log", ["{column}"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_{column}", "audit_log")
    op.drop_column("audit_log", "{column}")
'''


# -- throwaway database --------------------------------------------------------------------------


def asyncpg_dsn(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def sqlalchemy_url(url: URL) -> str:
    return url.render_as_string(hide_password=False)


async def admin_execute(admin_url: URL, statement: str) -> None:
    connection = await asyncpg.connect(asyncpg_dsn(admin_url))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@asynccontextmanager
async def throwaway_database(admin_url: URL, prefix: str) -> AsyncIterator[URL]:
    """A new database with the control schema at head, dropped on the way out whatever happens."""
    if admin_url.host not in LOOPBACK_HOSTS:
        raise SystemExit(f"refusing a non-loopback host: {admin_url.host!r}")
    name = f"{prefix}_{secrets.token_hex(4)}"
    url = admin_url.set(database=name)
    await admin_execute(admin_url, f'CREATE DATABASE "{name}"')
    try:
        database = Database(sqlalchemy_url(url), pool_size=1, max_overflow=0)
        try:
            await upgrade_control(database, str(control_scripts()))
        finally:
            await database.dispose()
        yield url
    finally:
        log(f"dropping {name}")
        # FORCE: a cancelled run may still hold a connection to it (or a CLI child process).
        await admin_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- setup ---------------------------------------------------------------------------------------


async def create_tenants(database: Database, count: int, batch: int) -> float:
    """Create ``count`` tenants through the registry, ``batch`` per transaction; return seconds."""
    registry = TenantRegistry(SchemaProvisioner(tenant_metadata, tenant_scripts()), derive_pepper(BENCH_SECRET))
    started = time.perf_counter()
    for first in range(0, count, batch):
        async with database.control_session() as session:
            for index in range(first, min(first + batch, count)):
                slug = f"fan_{index:05d}"
                await registry.create(session, slug, slug)
        done = min(first + batch, count)
        if done % 200 < batch or done == count:
            log(f"  {done}/{count} tenants ({time.perf_counter() - started:.1f} s)")
    return time.perf_counter() - started


async def tenant_schemas(database: Database) -> list[str]:
    async with database.control_session() as session:
        return list((await session.execute(select(Tenant.schema_name).order_by(Tenant.id))).scalars())


class ScratchTrack:
    """A copy of the tenant track to which each repeat appends one add-column-and-index revision."""

    def __init__(self, directory: Path) -> None:
        shutil.copytree(tenant_scripts(), directory, ignore=shutil.ignore_patterns("__pycache__"))
        self.directory = directory

    def add_revision(self, column: str) -> ScriptDirectory:
        head = ScriptDirectory(str(self.directory)).get_current_head()
        revision = f"bench_{column}"
        source = NEW_REVISION.format(column=column, revision=revision, down_revision=head)
        (self.directory / "versions" / f"{revision}.py").write_text(source)
        # A new ScriptDirectory: the old one has the revision map of the shorter track cached.
        return ScriptDirectory(str(self.directory))


# -- the timed runs ------------------------------------------------------------------------------


# A tenant schema, quoted or qualifying a name; and the repeat suffix of the bench's own columns.
_TENANT_NAME = re.compile(r'"tenant_[a-z0-9_]+"|\btenant_[a-z0-9_]+(?=\.)')
_REPEAT_SUFFIX = re.compile(r"_r\d+\b")


class StatementClock:
    """Counts and times what SQLAlchemy sends, by kind of statement (tenant schema names blanked),
    so the report can show where a run's time goes. It costs microseconds per statement."""

    def __init__(self) -> None:
        self.count = 0
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self.calls: defaultdict[str, int] = defaultdict(int)
        self._started = 0.0

    def before(self, *_args: Any) -> None:
        self._started = time.perf_counter()

    def after(self, _connection: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        kind = " ".join(_REPEAT_SUFFIX.sub("", _TENANT_NAME.sub("tenant_*", statement)).split())[:90]
        self.count += 1
        self.calls[kind] += 1
        self.seconds[kind] += time.perf_counter() - self._started

    @contextmanager
    def attached(self, engine: Engine) -> Iterator[None]:
        event.listen(engine, "before_cursor_execute", self.before)
        event.listen(engine, "after_cursor_execute", self.after)
        try:
            yield
        finally:
            event.remove(engine, "before_cursor_execute", self.before)
            event.remove(engine, "after_cursor_execute", self.after)


@dataclass
class Timing:
    label: str
    seconds: list[float] = field(default_factory=list)
    clocks: list[StatementClock] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) if self.seconds else float("nan")


async def timed(
    database: Database, timing: Timing, action: Callable[[], Awaitable[RunReport]], check: Callable[[RunReport], None]
) -> None:
    """Run ``action`` on a cold pool (as a fresh CLI process would) and record its time."""
    await database.engine.dispose()
    clock = StatementClock()
    with clock.attached(database.engine.sync_engine):
        started = time.perf_counter()
        report = await action()
        timing.seconds.append(time.perf_counter() - started)
    timing.clocks.append(clock)
    check(report)
    log(f"  {timing.label}: {timing.seconds[-1]:.2f} s, {clock.count} statements")


def expect_upgraded(count: int) -> Callable[[RunReport], None]:
    def check(report: RunReport) -> None:
        if len(report.upgraded) != count or report.failed:
            raise RuntimeError(f"expected {count} upgrades, got {len(report.upgraded)}; failed: {report.failed[:3]}")

    return check


def expect_noop(count: int) -> Callable[[RunReport], None]:
    def check(report: RunReport) -> None:
        if report.upgraded or report.failed or len(report.current) != count or report.run_id is not None:
            raise RuntimeError(f"expected a no-op over {count} tenants, got {report}")

    return check


async def plain_sql(url: URL, schemas: Sequence[str], column: str, *, one_round_trip: bool) -> float:
    """The ceiling: the revision's DDL per schema, one transaction each, sequential.

    ``one_round_trip`` sends each schema's transaction as one simple-protocol string (the tightest
    ceiling); otherwise BEGIN, ALTER, CREATE INDEX and COMMIT go one by one, as straightforward
    asyncpg code (``async with connection.transaction()``) would send them.
    """
    started = time.perf_counter()
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        for schema in schemas:
            alter = f'ALTER TABLE "{schema}".audit_log ADD COLUMN {column} text'
            index = f'CREATE INDEX ix_audit_log_{column} ON "{schema}".audit_log ({column})'
            if one_round_trip:
                await connection.execute(f"BEGIN; {alter}; {index}; COMMIT;")
                continue
            async with connection.transaction():
                await connection.execute(alter)
                await connection.execute(index)
    finally:
        await connection.close()
    return time.perf_counter() - started


def run_cli(command: Sequence[str], url: URL) -> float:
    """One ``billplane tenants migrate`` process with nothing to apply; returns wall seconds."""
    env = dict(os.environ)
    env.update(BILLPLANE_DATABASE_URL=sqlalchemy_url(url), BILLPLANE_SECRET_KEY=BENCH_SECRET)
    started = time.perf_counter()
    result = subprocess.run(
        [*command, "tenants", "migrate"],
        check=False,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0 or " 0 upgraded" not in result.stdout:
        raise RuntimeError(f"CLI run failed ({result.returncode}): {result.stdout} {result.stderr}")
    return elapsed


# -- phases --------------------------------------------------------------------------------------


@dataclass
class Results:
    tenants: int
    head: str = ""
    setup_s: float = 0.0
    migrate: Timing = field(default_factory=lambda: Timing("migrate(), one revision"))
    noop: Timing = field(default_factory=lambda: Timing("migrate(), nothing to apply"))
    sql: Timing = field(default_factory=lambda: Timing("plain SQL ceiling"))
    sql_steps: Timing = field(default_factory=lambda: Timing("plain SQL, statement by statement"))
    noop_real: Timing = field(default_factory=lambda: Timing("migrate(), nothing to apply, real track"))
    plan_real: Timing = field(default_factory=lambda: Timing("plan() alone, real track"))
    cli: dict[str, list[float]] = field(default_factory=dict)


async def measure_real_track_noop(database: Database, results: Results, repeat: int) -> None:
    migrator = TenantMigrator(database, ScriptDirectory(str(tenant_scripts())))
    results.head = migrator.head
    for _ in range(repeat):
        await timed(database, results.noop_real, migrator.migrate, expect_noop(results.tenants))

        async def plan_only() -> RunReport:
            plans = await migrator.plan()
            if any(plan.pending for plan in plans) or len(plans) != results.tenants:
                raise RuntimeError("plan() found work on a database at head")
            return RunReport(run_id=None, head=migrator.head, current=[plan.slug for plan in plans])

        await timed(database, results.plan_real, plan_only, expect_noop(results.tenants))


def measure_cli(url: URL, results: Results, repeat: int) -> None:
    commands = {
        "`uv run billplane tenants migrate`": ["uv", "run", "billplane"],
        "`.venv/bin/billplane tenants migrate`": [str(Path(sys.executable).parent / "billplane")],
    }
    for label in commands:
        results.cli[label] = []
    for _ in range(repeat):
        for label, command in commands.items():
            results.cli[label].append(run_cli(command, url))
            log(f"  CLI {label}: {results.cli[label][-1]:.2f} s")


async def measure_revisions(url: URL, database: Database, results: Results, repeat: int, scratch: Path) -> None:
    track = ScratchTrack(scratch / "tenant")
    schemas = await tenant_schemas(database)
    for index in range(1, repeat + 1):
        suffix = "" if index == 1 else f"_r{index}"
        migrator = TenantMigrator(database, track.add_revision(f"note{suffix}"))

        # Alternate the order so that neither side always runs on the larger catalog.
        sql_first = index % 2 == 0
        if sql_first:
            await run_ceiling(url, schemas, suffix, results)
        await timed(database, results.migrate, migrator.migrate, expect_upgraded(results.tenants))
        await timed(database, results.noop, migrator.migrate, expect_noop(results.tenants))
        if not sql_first:
            await run_ceiling(url, schemas, suffix, results)


async def run_ceiling(url: URL, schemas: Sequence[str], suffix: str, results: Results) -> None:
    results.sql.seconds.append(await plain_sql(url, schemas, f"note2{suffix}", one_round_trip=True))
    results.sql_steps.seconds.append(await plain_sql(url, schemas, f"note3{suffix}", one_round_trip=False))
    log(f"  plain SQL: {results.sql.seconds[-1]:.2f} s; statement by statement {results.sql_steps.seconds[-1]:.2f} s")


# -- reporting -----------------------------------------------------------------------------------


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def verdict(met: bool) -> str:  # noqa: FBT001 - a yes/no column
    return "met" if met else "**missed**"


def runs(seconds: Sequence[float]) -> str:
    return ", ".join(f"{value:.2f}" for value in seconds)


def row(label: str, seconds: Sequence[float], tenants: int, target: str = "", result: str = "") -> str:
    value = statistics.median(seconds)
    return f"| {label} | {value:.2f} | {value / tenants * 1000:.2f} | {runs(seconds)} | {target} | {result} |"


def ratio_row(label: str, migrate: Timing, ceiling: Timing) -> str:
    """Median over median, and each repeat's own ratio (the two ran back to back)."""
    ratio = migrate.median / ceiling.median
    pairs = ", ".join(f"{m / c:.2f}" for m, c in zip(migrate.seconds, ceiling.seconds, strict=True))
    return f"| {label} | {ratio:.2f}x | | {pairs} | <= {RATIO_TARGET:g}x | {verdict(ratio <= RATIO_TARGET)} |"


def results_table(results: Results) -> str:
    n = results.tenants
    lines = [
        "| Run | seconds (median) | ms per tenant | each run (s) | target | result |",
        "|---|---:|---:|---|---|---|",
        row("`TenantMigrator.migrate()`, one revision (ADD COLUMN + CREATE INDEX)", results.migrate.seconds, n),
        row(
            "plain SQL ceiling: same DDL, raw asyncpg, one transaction (one round trip) per schema",
            results.sql.seconds,
            n,
        ),
        row("plain SQL, BEGIN / ALTER / CREATE INDEX / COMMIT sent one by one", results.sql_steps.seconds, n),
        ratio_row("ratio migrate / plain SQL ceiling", results.migrate, results.sql),
        ratio_row("ratio migrate / plain SQL one by one", results.migrate, results.sql_steps),
    ]
    for timing in (results.noop, results.noop_real):
        met = verdict(timing.median < NOOP_TARGET_S)
        lines.append(row(f"`TenantMigrator.{timing.label}`", timing.seconds, n, f"< {NOOP_TARGET_S:g} s", met))
    lines.append(row(f"`TenantMigrator.{results.plan_real.label}`", results.plan_real.seconds, n))
    for label, seconds in results.cli.items():
        met = verdict(statistics.median(seconds) < NOOP_TARGET_S)
        lines.append(row(f"CLI {label}, nothing to apply, process start-up included", seconds, n, "< 2 s", met))
    return "\n".join(lines)


def statements_table(timing: Timing, tenants: int, top: int = 6) -> str:
    """Where one real-revision run spends its time, averaged over the runs."""
    runs_count = len(timing.clocks)
    seconds: defaultdict[str, float] = defaultdict(float)
    calls: defaultdict[str, int] = defaultdict(int)
    for clock in timing.clocks:
        for kind, value in clock.seconds.items():
            seconds[kind] += value / runs_count
            calls[kind] += clock.calls[kind]
    total = sum(clock.count for clock in timing.clocks) / runs_count
    intro = (
        f"Statements sent through SQLAlchemy per run: {total:.0f} ({total / tenants:.1f} per tenant); with the "
        "asyncpg statement cache off (docs/adr/0001) each is a prepare and an execute round trip. "
        f"The {top} most expensive kinds (tenant schema names blanked):\n"
    )
    lines = [
        intro,
        "| statement | per tenant | seconds per run | share of the run |",
        "|---|---:|---:|---:|",
    ]
    for kind, value in sorted(seconds.items(), key=lambda item: -item[1])[:top]:
        per_tenant = calls[kind] / runs_count / tenants
        lines.append(f"| `{kind}` | {per_tenant:.1f} | {value:.2f} | {value / timing.median:.0%} |")
    in_sql = sum(seconds.values())
    lines.append(f"| all statements | {total / tenants:.1f} | {in_sql:.2f} | {in_sql / timing.median:.0%} |")
    return "\n".join(lines)


def pressure() -> str:
    """Load and I/O pressure, so a reader can tell a quiet run from a disturbed one."""
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    io_file = Path("/proc/pressure/io")
    io = io_file.read_text().splitlines()[0] if io_file.exists() else "n/a"
    return f"load {load}; io pressure {io}"


async def server_version(url: URL) -> str:
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        version = await connection.fetchval("SHOW server_version")
        # Reported because catalog statistics (and so plans on pg_class) depend on it.
        autovacuum = await connection.fetchval("SHOW autovacuum")
        return f"{version} (autovacuum {autovacuum})"
    finally:
        await connection.close()


def code_version() -> str:
    """The commit measured: the tenant schema changes over time, so numbers belong to a commit."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False).stdout.strip()

    dirty = " with uncommitted changes" if git("status", "--porcelain", "--untracked-files=no") else ""
    return f"commit {git('rev-parse', '--short', 'HEAD') or 'unknown'}{dirty}"


# -- main -----------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark the tenant migration fan-out against plain SQL.")
    parser.add_argument("--database-url", default=DEFAULT_URL, help="admin URL on a loopback server")
    parser.add_argument("--tenants", type=int, default=1000, help="tenant schemas to create and migrate")
    parser.add_argument("--repeat", type=int, default=3, help="migrate / no-op / plain SQL rounds (median)")
    parser.add_argument("--cli-repeat", type=int, default=3, help="CLI no-op runs per entry point; 0 skips")
    # One tenant's creation holds ~270 locks until commit (72 new relations and their parts); the
    # shared lock table has room for ~6,400 with the default max_locks_per_transaction of 64.
    parser.add_argument("--batch", type=int, default=10, help="tenants per setup transaction")
    parser.add_argument(
        "--no-analyze",
        dest="analyze",
        action="store_false",
        help="keep the catalog statistics the setup left (stale where autovacuum is off)",
    )
    parser.add_argument("--time-limit", type=float, default=480.0, help="seconds before the run is aborted")
    args = parser.parse_args(argv)
    if args.tenants < 1 or args.repeat < 1 or args.batch < 1 or args.cli_repeat < 0:
        parser.error("--tenants, --repeat and --batch must be at least 1, --cli-repeat at least 0")
    return args


async def benchmark(args: argparse.Namespace, url: URL, scratch: Path) -> None:
    started = time.perf_counter()
    before = pressure()
    results = Results(args.tenants)
    database = Database(sqlalchemy_url(url), pool_size=1, max_overflow=0)
    try:
        log(f"creating {args.tenants} tenants, {args.batch} per transaction")
        results.setup_s = await create_tenants(database, args.tenants, args.batch)
        if args.analyze:
            await admin_execute(url, ANALYZE_AFTER_SETUP)
        log("nothing to apply, real track")
        await measure_real_track_noop(database, results, args.repeat)
        if args.cli_repeat:
            await asyncio.to_thread(measure_cli, url, results, args.cli_repeat)
        log("one revision, then nothing to apply, against plain SQL")
        await measure_revisions(url, database, results, args.repeat, scratch)
    finally:
        await database.dispose()
    print(f"## Migrating {args.tenants} tenant schemas (median of {args.repeat}; CLI {args.cli_repeat} runs)\n")
    print(results_table(results))
    print(f"\n{statements_table(results.migrate, args.tenants)}")
    print("\n## Environment\n")
    print(
        f"- PostgreSQL {await server_version(url)}, {os.cpu_count()} CPU cores, Python "
        f"{platform.python_version()}, SQLAlchemy {sqlalchemy.__version__}, alembic {alembic.__version__}, "
        f"asyncpg {asyncpg.__version__}"
    )
    print(
        f"- setup: {args.tenants} tenants through `TenantRegistry.create`, {args.batch} per transaction: "
        f"{results.setup_s:.1f} s ({results.setup_s / args.tenants * 1000:.1f} ms per tenant)"
    )
    analyzed = "analyzed after setup" if args.analyze else "left as the setup made them (--no-analyze)"
    print(f"- catalog statistics: {analyzed}")
    print(f"- code: {code_version()}; tenant track head {results.head}: {len(tenant_metadata.tables)} tenant tables")
    print(f"- before: {before}; after: {pressure()}; run time {time.perf_counter() - started:.0f} s")
    print("- command: " + shlex.join(["uv", "run", "python", *sys.argv]))


async def main(args: argparse.Namespace) -> None:
    # SIGTERM cancels the run like Ctrl-C does, so the finally blocks still drop the database.
    task = asyncio.current_task()
    if task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    async with throwaway_database(make_url(args.database_url), "bench_fanout") as url:
        with tempfile.TemporaryDirectory(prefix="bench_fanout_") as scratch:
            async with asyncio.timeout(args.time_limit):
                await benchmark(args, url, Path(scratch))


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
