"""Benchmark: provisioning one tenant schema, against the same DDL run as one plain SQL script.

Three ways to create a tenant, measured interleaved in the same run (round i runs each of them
once, in an order that rotates with i, so drift and catalog growth hit all of them alike):

(a) ``TenantRegistry.create`` end to end: tenant row, schema, stamp, first API key, committed,
    through ``Database.control_session`` exactly as the CLI and the operator API call it;
(b) ``SchemaProvisioner.create_schema`` alone, in one committed ``Database.transaction``;
(c) the ceiling: ``CREATE SCHEMA; SET LOCAL search_path; <provisioner.ddl_script>`` sent by raw
    asyncpg as one simple-protocol script between BEGIN and COMMIT (one round trip, one commit).

Each of them runs on two tenant tracks:

- "real": the real tenant track (``migrations/tenant``) and the real models;
- "long": a scratch copy of the track plus ``--extra-revisions`` (default 50) revisions, each
  adding one nullable text column to ``audit_log``, with a copy of the models that has them.

Provisioning must cost the same on both (it never replays history). For contrast, a tenant is
also built by running the whole chain: ``TenantMigrator.migrate([slug])`` on an empty schema.

The benchmark creates a throwaway database next to ``--database-url`` (loopback only), upgrades
its control schema, prints Markdown tables and the command, and drops the database at the end,
also on error, Ctrl-C, SIGTERM or ``--time-limit``.

Run:  uv run python bench/provisioning.py [--tenants 200 --extra-revisions 50 --chain-tenants 20]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import secrets
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import alembic
import asyncpg
import sqlalchemy
from alembic.script import ScriptDirectory
from sqlalchemy import Column, MetaData, Text, event, text
from sqlalchemy.engine import URL, make_url

from billplane.db.paths import control_scripts, tenant_scripts
from billplane.db.tenant_models import tenant_metadata
from billplane_tenants import (
    NAMING_CONVENTION,
    Database,
    SchemaProvisioner,
    Tenant,
    TenantMigrator,
    TenantRegistry,
    derive_pepper,
)
from billplane_tenants.migrations import upgrade_control

DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
# The pepper only has to be stable within the run; no key issued here outlives the database.
BENCH_SECRET = "bench-secret-key-" + "x" * 32
MEDIAN_TARGET_MS = 150.0
RATIO_TARGET = 1.5
EDGE = 50  # tenants in the "first N" and "last N" windows
REPO = Path(__file__).resolve().parent.parent
RELATIONS_IN_SCHEMA = (
    "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1"
)

EXTRA_REVISION = '''"""bench: history filler {index}"""
import sqlalchemy as sa
from alembic import op

revision = "{revision}"
down_revision = "{down_revision}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("audit_log", sa.Column("{column}", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("audit_log", "{column}")
'''


# -- throwaway database --------------------------------------------------------------------------


def asyncpg_dsn(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


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
        database = Database(url.render_as_string(hide_password=False), pool_size=1, max_overflow=0)
        try:
            await upgrade_control(database, str(control_scripts()))
        finally:
            await database.dispose()
        yield url
    finally:
        log(f"dropping {name}")
        # FORCE: a cancelled run may still hold a connection to it.
        await admin_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- the two tenant tracks -------------------------------------------------------------------


@dataclass(frozen=True)
class Track:
    name: str
    revisions: int
    provisioner: SchemaProvisioner
    registry: TenantRegistry
    migrator: TenantMigrator


def write_long_track(target: Path, extra: int) -> list[str]:
    """Copy the real tenant track to ``target`` and chain ``extra`` add-column revisions onto it."""
    shutil.copytree(tenant_scripts(), target, ignore=shutil.ignore_patterns("__pycache__"))
    down = ScriptDirectory(str(target)).get_current_head()
    columns = []
    for index in range(1, extra + 1):
        revision, column = f"bench_{index:04d}", f"extra_{index:04d}"
        source = EXTRA_REVISION.format(index=index, revision=revision, down_revision=down, column=column)
        (target / "versions" / f"{revision}.py").write_text(source)
        columns.append(column)
        down = revision
    return columns


def metadata_with_columns(columns: Sequence[str]) -> MetaData:
    """The tenant models as they would look after the filler revisions: audit_log plus columns."""
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    for table in tenant_metadata.sorted_tables:
        table.to_metadata(metadata)
    audit_log = metadata.tables["audit_log"]
    for column in columns:
        audit_log.append_column(Column(column, Text, nullable=True))
    return metadata


def make_track(kind: str, database: Database, metadata: MetaData, script_location: Path) -> Track:
    provisioner = SchemaProvisioner(metadata, script_location)
    registry = TenantRegistry(provisioner, derive_pepper(BENCH_SECRET))
    migrator = TenantMigrator(database, provisioner.scripts)
    revisions = sum(1 for _ in provisioner.scripts.walk_revisions())
    return Track(f"{kind}, {revisions} revisions", revisions, provisioner, registry, migrator)


# -- the three ways to create a tenant -------------------------------------------------------------


@dataclass(frozen=True)
class Method:
    key: str
    label: str


METHODS = (
    Method("a", "(a) TenantRegistry.create, committed"),
    Method("b", "(b) SchemaProvisioner.create_schema, committed"),
    Method("c", "(c) plain SQL script, raw asyncpg (ceiling)"),
)


@dataclass
class Series:
    """The timings of one method on one track, in creation order."""

    track: Track
    method: Method
    cold_ms: float | None = None
    samples_ms: list[float] = field(default_factory=list)


class Creator:
    """Runs one tenant creation of a given method on a given track and returns its time."""

    def __init__(self, database: Database, raw: Any) -> None:
        self._database = database
        self._raw = raw  # one dedicated asyncpg connection for the ceiling

    async def create(self, track: Track, method: Method, label: str) -> float:
        action = {"a": self._registry, "b": self._provisioner, "c": self._plain_sql}[method.key]
        started = time.perf_counter()
        await action(track, label)
        return (time.perf_counter() - started) * 1000

    async def _registry(self, track: Track, label: str) -> None:
        async with self._database.control_session() as session:
            await track.registry.create(session, label, label)

    async def _provisioner(self, track: Track, label: str) -> None:
        async with self._database.transaction() as connection:
            await track.provisioner.create_schema(connection, f"tenant_{label}")

    async def _plain_sql(self, track: Track, label: str) -> None:
        schema = f'"tenant_{label}"'
        # One simple-protocol round trip: the tightest way PostgreSQL can be handed this DDL.
        script = f"BEGIN; CREATE SCHEMA {schema}; SET LOCAL search_path TO {schema};\n"
        await self._raw.execute(script + track.provisioner.ddl_script + "\nCOMMIT;")


def label_for(track: Track, method: Method, index: int) -> str:
    # Slugs must match ^[a-z][a-z0-9_]{1,39}$; the index keeps every run's names unique.
    return f"r{track.revisions}_{method.key}_{index:05d}"


async def run_rounds(creator: Creator, series: list[Series], rounds: int) -> None:
    """Round 0 is the cold call (first connection, revision files parsed, DDL rendered)."""
    for index in range(rounds + 1):
        shift = index % len(series)
        for item in series[shift:] + series[:shift]:
            elapsed = await creator.create(item.track, item.method, label_for(item.track, item.method, index))
            if index == 0:
                item.cold_ms = elapsed
            else:
                item.samples_ms.append(elapsed)
        if index % 50 == 0:
            log(f"  round {index}/{rounds}")


# -- contrast: building a tenant by replaying the migration chain ----------------------------------


async def chain_build(database: Database, track: Track, slug: str) -> float:
    """Time ``migrate([slug])`` on an empty schema whose tenant row already exists."""
    async with database.control_session() as session:
        session.add(Tenant(slug=slug, name=slug, schema_name=f"tenant_{slug}"))
        await session.flush()
        await session.execute(text(f'CREATE SCHEMA "tenant_{slug}"'))
    started = time.perf_counter()
    report = await track.migrator.migrate([slug])
    elapsed = (time.perf_counter() - started) * 1000
    if report.failed or len(report.upgraded) != 1:
        raise RuntimeError(f"chain build of {slug} failed: {report.failed}")
    return elapsed


async def run_chain_builds(database: Database, tracks: Sequence[Track], count: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {track.name: [] for track in tracks}
    for index in range(count):
        for track in tracks if index % 2 == 0 else list(reversed(tracks)):
            slug = f"chain{track.revisions}_{index:05d}"
            results[track.name].append(await chain_build(database, track, slug))
    return results


async def count_statements(database: Database, creator: Creator, track: Track, method: Method) -> int:
    """How many statements one creation sends through SQLAlchemy (untimed, one extra tenant)."""
    sent = 0

    def count(*_args: Any) -> None:
        nonlocal sent
        sent += 1

    event.listen(database.engine.sync_engine, "before_cursor_execute", count)
    try:
        await creator.create(track, method, f"probe{track.revisions}_{method.key}")
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", count)
    return sent


async def columns_of(database: Database, schema: str) -> list[str]:
    query = text(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = :schema AND table_name = 'audit_log' ORDER BY ordinal_position"
    )
    async with database.transaction() as connection:
        return list((await connection.execute(query, {"schema": schema})).scalars())


# -- statistics and reporting -------------------------------------------------------------------


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def verdict(met: bool) -> str:  # noqa: FBT001 - a yes/no column
    return "met" if met else "**missed**"


def series_table(series: Sequence[Series]) -> str:
    header = (
        f"| Track | Method | n | median ms | p95 ms | min ms | max ms | first {EDGE} median "
        f"| last {EDGE} median | cold first call ms |"
    )
    lines = [
        header,
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for item in series:
        samples = item.samples_ms
        lines.append(
            f"| {item.track.name} | {item.method.label} | {len(samples)} | {median(samples):.1f} "
            f"| {percentile(samples, 0.95):.1f} | {min(samples):.1f} | {max(samples):.1f} "
            f"| {median(samples[:EDGE]):.1f} | {median(samples[-EDGE:]):.1f} | {item.cold_ms or 0:.1f} |"
        )
    return "\n".join(lines)


def medians(series: Sequence[Series]) -> dict[tuple[str, str], float]:
    return {(item.track.name, item.method.key): median(item.samples_ms) for item in series}


def ratio_table(series: Sequence[Series], tracks: Sequence[Track]) -> str:
    by_key = medians(series)
    lines = [
        "| Track | (a) median ms | < 150 ms | (b) median ms | < 150 ms | (a)/(c) | <= 1.5x | (b)/(c) | <= 1.5x |",
        "|---|---:|---|---:|---|---:|---|---:|---|",
    ]
    for track in tracks:
        a, b, c = (by_key[(track.name, key)] for key in "abc")
        lines.append(
            f"| {track.name} | {a:.1f} | {verdict(a < MEDIAN_TARGET_MS)} | {b:.1f} | {verdict(b < MEDIAN_TARGET_MS)} "
            f"| {a / c:.2f} | {verdict(a / c <= RATIO_TARGET)} | {b / c:.2f} | {verdict(b / c <= RATIO_TARGET)} |"
        )
    return "\n".join(lines)


def history_table(series: Sequence[Series], tracks: Sequence[Track], chains: dict[str, list[float]]) -> str:
    by_key = medians(series)
    short, long = tracks
    lines = [
        f"| Median ms | {short.name} | {long.name} | {long.name} / {short.name} |",
        "|---|---:|---:|---:|",
    ]
    for method in METHODS:
        first, second = by_key[(short.name, method.key)], by_key[(long.name, method.key)]
        lines.append(f"| {method.label} | {first:.1f} | {second:.1f} | {second / first:.2f} |")
    first, second = median(chains[short.name]), median(chains[long.name])
    lines.append(
        f"| contrast: TenantMigrator.migrate([slug]) on an empty schema (n={len(chains[short.name])}) "
        f"| {first:.1f} | {second:.1f} | {second / first:.2f} |"
    )
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
    parser = argparse.ArgumentParser(description="Benchmark tenant provisioning against plain SQL DDL.")
    parser.add_argument("--database-url", default=DEFAULT_URL, help="admin URL on a loopback server")
    parser.add_argument("--tenants", type=int, default=200, help="measured tenants per method and track")
    parser.add_argument("--extra-revisions", type=int, default=50, help="filler revisions of the long track")
    parser.add_argument("--chain-tenants", type=int, default=20, help="tenants built by migrate() per track")
    parser.add_argument("--time-limit", type=float, default=480.0, help="seconds before the run is aborted")
    args = parser.parse_args(argv)
    if args.tenants < 1 or args.chain_tenants < 1 or args.extra_revisions < 1:
        parser.error("--tenants, --chain-tenants and --extra-revisions must be at least 1")
    return args


async def benchmark(args: argparse.Namespace, url: URL, scratch: Path) -> None:
    started = time.perf_counter()
    before = pressure()
    database = Database(url.render_as_string(hide_password=False), pool_size=2, max_overflow=0)
    raw = await asyncpg.connect(asyncpg_dsn(url))
    try:
        long_track = scratch / "tenant"
        extra_columns = write_long_track(long_track, args.extra_revisions)
        tracks = [
            make_track("real", database, tenant_metadata, tenant_scripts()),
            make_track("long", database, metadata_with_columns(extra_columns), long_track),
        ]
        series = [Series(track, method) for track in tracks for method in METHODS]
        log(f"provisioning {args.tenants} + 1 tenants x {len(series)} series")
        await run_rounds(Creator(database, raw), series, args.tenants)
        log(f"building {args.chain_tenants} tenants per track by migrate()")
        chains = await run_chain_builds(database, tracks, args.chain_tenants)
        await check_equivalence(database, tracks[1])
        creator = Creator(database, raw)
        statements = {
            method.key: await count_statements(database, creator, tracks[0], method)
            for method in METHODS[:2]  # (c) bypasses SQLAlchemy
        }
        print_report(args, series, tracks, chains, statements)
        print("\n## Environment\n")
        print(
            f"- PostgreSQL {await server_version(url)}, {os.cpu_count()} CPU cores, Python "
            f"{platform.python_version()}, SQLAlchemy {sqlalchemy.__version__}, alembic {alembic.__version__}, "
            f"asyncpg {asyncpg.__version__}; run time {time.perf_counter() - started:.0f} s"
        )
        sample = f"tenant_{label_for(tracks[0], METHODS[0], 1)}"
        relations = await raw.fetchval(RELATIONS_IN_SCHEMA, sample)
        print(
            f"- code: {code_version()}; tenant track head {tracks[0].provisioner.head}: "
            f"{len(tenant_metadata.tables)} tenant tables, {relations} relations per tenant schema"
        )
        print(f"- before: {before}; after: {pressure()}")
        print("- command: " + shlex.join(["uv", "run", "python", *sys.argv]))
    finally:
        await raw.close()
        await database.dispose()


async def check_equivalence(database: Database, track: Track) -> None:
    """The long track's provisioned and chain-built schemas must have the same columns, or the
    comparison would be between two different schemas."""
    provisioned = await columns_of(database, f"tenant_{label_for(track, METHODS[0], 1)}")
    migrated = await columns_of(database, f"tenant_chain{track.revisions}_00000")
    if provisioned != migrated:
        raise RuntimeError(f"provisioned {provisioned} != migrated {migrated}")
    log(f"check: {track.name}: provisioned and migrated audit_log both have {len(migrated)} columns")


def print_report(
    args: argparse.Namespace,
    series: Sequence[Series],
    tracks: Sequence[Track],
    chains: dict[str, list[float]],
    statements: dict[str, int],
) -> None:
    print(f"## Provisioning one tenant ({args.tenants} per method and track, interleaved)\n")
    print(series_table(series))
    print("\n## Against the targets (medians)\n")
    print(ratio_table(series, tracks))
    print("\n## As the migration history grows (medians)\n")
    print(history_table(series, tracks, chains))
    schemas = len(series) * (args.tenants + 1) + len(tracks) * args.chain_tenants
    print(
        f"\nThe database held {schemas} tenant schemas at the end; round i ran after 6 x i earlier "
        f"provisionings, so 'last {EDGE}' is measured on a larger catalog than 'first {EDGE}'."
    )
    print(
        f"\nStatements sent through SQLAlchemy per tenant: (a) {statements['a']}, (b) {statements['b']}. "
        "With the asyncpg statement cache off (docs/adr/0001) each is a prepare "
        "and an execute round trip; (a) and (b) also send the DDL script (one round trip), BEGIN, COMMIT "
        "and the pool's pre-ping. (c) sends one string in one round trip."
    )


async def main(args: argparse.Namespace) -> None:
    # SIGTERM cancels the run like Ctrl-C does, so the finally blocks still drop the database.
    task = asyncio.current_task()
    if task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    async with throwaway_database(make_url(args.database_url), "bench_provisioning") as url:
        with tempfile.TemporaryDirectory(prefix="bench_tracks_") as scratch:
            async with asyncio.timeout(args.time_limit):
                await benchmark(args, url, Path(scratch))


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
