"""Benchmark: a billing run over many due subscriptions in many tenants (issue 7: at least 1/4 of the
rate of inserting the same invoice and line rows with plain SQL).

What it does, in one run (loopback only, bounded, cleans up after itself):

1. creates a throwaway database ``bench_billing_<random>`` next to ``--database-url`` with the
   control schema at head, and ``--tenants`` tenants through the operator API (in process, no
   HTTP server), each with a default sandbox provider account (``POST /v1/provider-accounts``)
   unless ``--no-charge``;
2. seeds each tenant with one SQL statement: a per-seat monthly plan and ``--per-tenant``
   customers, each with a default payment method at the tenant's account and one active
   subscription whose period ended a minute ago (so each is due for exactly one boundary);
3. times ``BillingRun(...).run()`` in this process, with billplane's own ``Database`` (the job
   queue open, as in a worker, and flushed before the clock stops): each subscription crosses its
   boundary, its invoice is inserted finalized (its gapless number) and, with an account,
   charged: a pending payment and its ``payment.charge`` outbox row, announced to the workers by
   NOTIFY. No worker runs, so no job is deferred and nothing reaches the sandbox;
4. checks that every subscription was billed exactly once (one invoice for the new period, one
   line, a number, a pending payment when charged, the subscription moved on);
5. as the ceiling, inserts the same number of invoice and line rows for the same subscriptions,
   tenant by tenant in one transaction each, with raw asyncpg (``INSERT ... SELECT FROM unnest``:
   one multi-row statement for the invoices, one for their lines), for a period a century later so
   the run's rows and constraints are untouched: on one connection, and on as many as each run
   uses (``--concurrency``, and twice that for the two runs at once), so every run gets a verdict
   against a ceiling on the same number of connections; and, for reference, not as the issue's
   ceiling: plain SQL that writes every row the run writes (``billing_rows.py``: the
   subscriptions' new versions, the counter, the three events with the run's own JSON, the
   pending payments and their outbox rows, as well as the invoices and lines), on as many
   connections as the run;
6. unless ``--no-concurrent``: makes every subscription due again and times two billing runs at
   once, each in its own process, then checks again that each period was billed exactly once;
7. prints invoices/s for the run and the ceiling, their ratio against the target, CPU seconds of
   this process and of PostgreSQL's backends, the load average (the machine is shared) and the
   command; drops the database, also on error, Ctrl-C, SIGTERM or ``--time-limit``.

Run:  uv run python bench/billing_run.py            # 1,000 tenants x 100 subscriptions
      uv run python bench/billing_run.py --quick    # smoke run: 20 tenants x 50
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import logging
import os
import platform
import shlex
import signal
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from typing import Any

import asyncpg
import httpx
from sqlalchemy.engine import URL, make_url

from api_throughput import BENCH_ADMIN, bench_settings
from billing_rows import EventTemplate, event_templates, write_every_row
from billplane.app import create_app
from billplane.billing.run import CONCURRENT_TENANTS, BillingRun, RunReport
from billplane.runtime import Runtime
from billplane_tenants.naming import quoted_schema, schema_for_slug
from support import asyncpg_dsn, log, process_cpu, throwaway_database, url_text

DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
TARGET = 0.25  # of the plain-SQL ceiling (issue 7)
SEAT_PRICE = 1200  # minor units, USD, per seat and month
CEILING_SHIFT = timedelta(days=36_500)  # the ceiling's rows bill a period a century later

# One statement per tenant: plan, customers, their default payment methods, their subscriptions.
SEED = """
WITH product AS (INSERT INTO products (name) VALUES ('Seats') RETURNING id),
plan AS (
    INSERT INTO plans (product_id, name, pricing_model, amount, currency, billing_interval)
    SELECT id, 'Team', 'per_seat', $1, 'USD', 'month' FROM product RETURNING id
),
customer AS (
    INSERT INTO customers (name) SELECT 'Customer ' || n FROM generate_series(1, $2) AS n RETURNING id
),
method AS (
    INSERT INTO payment_methods
        (customer_id, provider, provider_account_id, provider_payment_method_id, is_default, brand, last4)
    SELECT id, 'sandbox', $3::bigint, 'pm_bench_' || id, true, 'visa', '4242' FROM customer WHERE $3 IS NOT NULL
)
INSERT INTO subscriptions (customer_id, plan_id, status, quantity, current_period_start, current_period_end)
SELECT customer.id, plan.id, 'active', 1 + customer.id % 5, $4, $5 FROM customer, plan
RETURNING id, customer_id, quantity
"""
CEILING_INVOICES = """
INSERT INTO invoices (customer_id, subscription_id, number, status, currency, subtotal, total,
                      period_start, period_end, billing_reason, finalized_at, due_at)
SELECT c, s, n, 'open', 'USD', t, t, $5, $6, 'subscription_cycle', now(), now()
FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::bigint[]) AS u(c, s, n, t)
RETURNING id
"""
CEILING_LINES = """
INSERT INTO invoice_lines (invoice_id, plan_id, description, quantity, unit_amount, amount, currency,
                           period_start, period_end)
SELECT i, $2, 'Team', q, $3::bigint, q * $3::bigint, 'USD', $4, $5 FROM unnest($1::bigint[], $6::bigint[]) AS u(i, q)
"""
# Per tenant: how the subscriptions billed for the period that starts at $1 turned out.
CHECK = """
SELECT
    (SELECT count(*) FROM subscriptions) AS subscriptions,
    (SELECT count(*) FROM subscriptions WHERE current_period_start = $1) AS moved,
    (SELECT count(*) FROM invoices WHERE billing_reason = 'subscription_cycle' AND period_start = $1) AS invoices,
    (SELECT count(DISTINCT subscription_id) FROM invoices
     WHERE billing_reason = 'subscription_cycle' AND period_start = $1) AS billed,
    (SELECT count(*) FROM invoices WHERE period_start = $1 AND number IS NOT NULL AND status = 'open') AS numbered,
    (SELECT count(*) FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id
     WHERE i.period_start = $1 AND l.amount = $2 * l.quantity) AS lines,
    (SELECT count(*) FROM payments p JOIN invoices i ON i.id = p.invoice_id
     WHERE i.period_start = $1 AND p.status = 'pending' AND p.amount = i.total) AS payments,
    (SELECT count(*) FROM outbox WHERE kind = 'payment.charge') AS charges,
    (SELECT count(*) = coalesce(max(substr(number, 5)::bigint), 0)
        AND count(*) = (SELECT coalesce(max(last_number), 0) FROM invoice_counters)
     FROM invoices WHERE number LIKE 'INV-%') AS gapless
"""


@dataclass(frozen=True)
class Tenant:
    schema: str
    account: int | None
    subscriptions: list[tuple[int, int, int]]  # id, customer id, quantity


@dataclass
class Timed:
    label: str
    invoices: int
    seconds: float
    client_cpu: float = 0.0
    postgres_cpu: float = 0.0
    connections: int = 1  # to PostgreSQL at once: a verdict compares runs with ceilings of as many
    reference: bool = False  # not the ceiling: no verdict against it (``billing_rows``)

    @property
    def rate(self) -> float:
        return self.invoices / self.seconds

    def per_thousand(self, seconds: float) -> float:
        return 1000 * seconds / max(self.invoices, 1)


# -- setup ------------------------------------------------------------------------------------------


async def create_tenants(url: URL, args: argparse.Namespace) -> list[tuple[str, int | None]]:
    """(schema, default sandbox account id) of each new tenant, through the operator API in process."""
    settings = bench_settings(url, pool_size=args.setup_concurrency, max_overflow=0)
    app = create_app(settings)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per setup request otherwise
    admin = {"Authorization": f"Bearer {BENCH_ADMIN}"}
    nonce = os.urandom(2).hex()
    made: list[tuple[str, int | None]] = []
    numbers = iter(range(args.tenants))
    try:
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type] # Litestar types its scope narrower

        async def one(client: httpx.AsyncClient, index: int) -> tuple[str, int | None]:
            slug = f"b{nonce}_{index:04d}"
            created = await client.post("/v1/admin/tenants", json={"slug": slug, "name": slug}, headers=admin)
            created.raise_for_status()
            if args.no_charge:
                return schema_for_slug(slug), None
            account = {"provider": "sandbox", "mode": "test", "credentials": {"api_key": f"sk_sandbox_bench_{slug}"}}
            headers = {"Authorization": f"Bearer {created.json()['api_key']['key']}"}
            connected = await client.post("/v1/provider-accounts", json=account, headers=headers)
            if connected.status_code != 201 or not connected.json()["is_default"]:
                raise RuntimeError(f"{slug}: no default sandbox account: {connected.status_code} {connected.text}")
            return schema_for_slug(slug), int(connected.json()["id"])

        async def loop(client: httpx.AsyncClient) -> None:
            for index in numbers:
                made.append(await one(client, index))
                if len(made) % 100 == 0:
                    log(f"  {len(made)} tenants")

        async with httpx.AsyncClient(transport=transport, base_url="http://setup", timeout=120) as client:
            await asyncio.gather(*(loop(client) for _ in range(args.setup_concurrency)))
    finally:
        await app.state.runtime.close()
    return sorted(made)


async def seed(connection: asyncpg.Connection, made: list[tuple[str, int | None]], per_tenant: int) -> list[Tenant]:
    """Every tenant's plan, customers, payment methods and subscriptions, whose period ended a minute ago."""
    ended = datetime.now(UTC) - timedelta(minutes=1)
    tenants = []
    for schema, account in made:
        async with connection.transaction():
            await connection.execute(f"SET LOCAL search_path = {quoted_schema(schema)}")
            rows = await connection.fetch(SEED, SEAT_PRICE, per_tenant, account, ended - timedelta(days=30), ended)
        tenants.append(Tenant(schema, account, [(row["id"], row["customer_id"], row["quantity"]) for row in rows]))
    return tenants


async def make_due_again(connection: asyncpg.Connection, tenants: list[Tenant]) -> None:
    """Every subscription's current period ends now: one more boundary each, a new period to bill."""
    ended = datetime.now(UTC) - timedelta(seconds=1)
    for tenant in tenants:
        await connection.execute(
            f"UPDATE {quoted_schema(tenant.schema)}.subscriptions SET current_period_start = $1, "
            "current_period_end = $2",
            ended - timedelta(days=30),
            ended,
        )


async def period_of(connection: asyncpg.Connection, tenant: Tenant) -> datetime:
    """The start of the period a run bills next: the seeded period's end (the same in every tenant)."""
    value: datetime = await connection.fetchval(
        f"SELECT min(current_period_end) FROM {quoted_schema(tenant.schema)}.subscriptions"
    )
    return value


# -- measuring --------------------------------------------------------------------------------------


async def backend_cpu(monitor: asyncpg.Connection, application: str) -> dict[int, float]:
    rows = await monitor.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend'"
        " AND pid <> pg_backend_pid() AND application_name = $1",
        application,
    )
    return {row["pid"]: process_cpu(row["pid"]) for row in rows}


async def watch_backends(monitor: asyncpg.Connection, application: str, seen: dict[int, float]) -> None:
    """Keep the latest CPU reading of each backend: the children's close with them (a lower bound,
    by at most the last half second of each)."""
    while True:
        seen.update(await backend_cpu(monitor, application))
        await asyncio.sleep(0.5)


def used(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


async def measure_run(
    url: URL, monitor: asyncpg.Connection, concurrency: int, profile: str | None
) -> tuple[Timed, RunReport]:
    """One BillingRun in this process, timed until the jobs it rang are deferred."""
    runtime = Runtime.from_settings(bench_settings(url))
    profiler = cProfile.Profile() if profile else None
    try:
        await runtime.jobs.open()  # the queue's connections exist before the clock starts, as in a worker
        backends_before = await backend_cpu(monitor, "billplane")
        client_before = time.process_time()
        started = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        report = await BillingRun(runtime.database, runtime.accounts, concurrency=concurrency).run()
        await runtime.jobs.flush()
        seconds = time.perf_counter() - started
        if profiler is not None and profile is not None:
            profiler.disable()
            profiler.dump_stats(profile)
        client_cpu = time.process_time() - client_before
        # Backends that closed during the run (pool recycling) are not counted: a lower bound.
        postgres_cpu = used(backends_before, await backend_cpu(monitor, "billplane"))
    finally:
        await runtime.close()
    label = f"BillingRun, one process, {concurrency} tenant{'s' if concurrency > 1 else ''} at once"
    return Timed(label, report.invoices, seconds, client_cpu, postgres_cpu, concurrency), report


async def measure_ceiling(
    url: URL,
    tenants: list[Tenant],
    period: datetime,
    monitor: asyncpg.Connection,
    connections: int,
    *,
    every_row: list[EventTemplate] | None = None,
) -> Timed:
    """The same invoice and line rows by raw asyncpg: one transaction and two statements per tenant,
    on ``connections`` connections at once (each takes the next tenant, as the run's billers do).
    With ``every_row`` (the run's events of one tenant), every other row the run writes as well."""
    # Each ceiling bills a period of its own, a century or more later.
    shift = CEILING_SHIFT * (connections + (20 if every_row is not None else 0))
    start, end = period + shift, period + shift + timedelta(days=30)
    prefix = f"{'ROWS' if every_row is not None else 'CEIL'}{connections}"
    application = f"bench-{prefix.lower()}"
    settings = {"application_name": application}
    pool = [
        await asyncpg.connect(asyncpg_dsn(url), statement_cache_size=0, server_settings=settings)
        for _ in range(connections)
    ]
    work = iter(tenants)

    async def insert(connection: asyncpg.Connection) -> int:
        invoices = 0
        for tenant in work:
            subscriptions = tenant.subscriptions
            quantities = [quantity for _, _, quantity in subscriptions]
            async with connection.transaction():
                await connection.execute(f"SET LOCAL search_path = {quoted_schema(tenant.schema)}")
                plan = await connection.fetchval("SELECT id FROM plans LIMIT 1")
                ids = await connection.fetch(
                    CEILING_INVOICES,
                    [customer for _, customer, _ in subscriptions],
                    [subscription for subscription, _, _ in subscriptions],
                    [f"{prefix}-{subscription}" for subscription, _, _ in subscriptions],
                    totals := [SEAT_PRICE * quantity for quantity in quantities],
                    start,
                    end,
                )
                invoice_ids = [row["id"] for row in ids]
                await connection.execute(CEILING_LINES, invoice_ids, plan, SEAT_PRICE, start, end, quantities)
                if every_row is not None:
                    await write_every_row(
                        connection, subscriptions, invoice_ids, totals, every_row, account=tenant.account
                    )
            invoices += len(ids)
        return invoices

    try:
        backends_before = await backend_cpu(monitor, application)
        client_before = time.process_time()
        started = time.perf_counter()
        invoices = sum(await asyncio.gather(*(insert(connection) for connection in pool)))
        seconds = time.perf_counter() - started
        client_cpu = time.process_time() - client_before
        postgres_cpu = used(backends_before, await backend_cpu(monitor, application))
    finally:
        for connection in pool:
            await connection.close()
    plural = "s" if connections > 1 else ""
    label = f"ceiling: INSERT ... unnest (raw asyncpg), {connections} connection{plural}"
    if every_row is not None:
        label = f"for reference: every row the run writes, plain SQL (raw asyncpg), {connections} connection{plural}"
    return Timed(label, invoices, seconds, client_cpu, postgres_cpu, connections, reference=every_row is not None)


async def measure_two(url: URL, monitor: asyncpg.Connection, concurrency: int) -> tuple[Timed, list[dict[str, Any]]]:
    """Two BillingRuns at once, each in its own process; timed from "go" until both have finished."""
    command = [sys.executable, __file__, "--child", url_text(url), "--concurrency", str(concurrency)]
    children = [
        await asyncio.create_subprocess_exec(
            *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, start_new_session=True
        )
        for _ in range(2)
    ]
    try:
        for child in children:  # each says "ready" once its imports and connections are done
            assert child.stdout is not None  # noqa: S101 - PIPE
            line = await asyncio.wait_for(child.stdout.readline(), timeout=120)
            if line.strip() != b"ready":
                raise RuntimeError(f"a child run did not start: {line!r}")
        backends_before = await backend_cpu(monitor, "billplane")
        seen: dict[int, float] = dict(backends_before)
        watching = asyncio.create_task(watch_backends(monitor, "billplane", seen))
        started = time.perf_counter()
        for child in children:
            assert child.stdin is not None  # noqa: S101 - PIPE
            child.stdin.write(b"go\n")
            await child.stdin.drain()
        outputs = await asyncio.gather(*(child.communicate() for child in children))
        seconds = time.perf_counter() - started
        watching.cancel()
        postgres_cpu = used(backends_before, seen)
    finally:
        for child in children:
            if child.returncode is None:
                child.kill()
                await child.wait()
    if any(child.returncode != 0 for child in children):
        raise RuntimeError(f"a child run failed: {[child.returncode for child in children]}")
    reports = [json.loads(stdout.decode().strip().splitlines()[-1]) for stdout, _ in outputs]
    label = f"two BillingRuns at once, two processes, {concurrency} tenant{'s' if concurrency > 1 else ''} at once each"
    timed = Timed(label, sum(r["invoices"] for r in reports), seconds, connections=2 * concurrency)
    # "this process" is the two children here.
    timed.client_cpu = sum(r["cpu"] for r in reports)
    timed.postgres_cpu = postgres_cpu
    return timed, reports


async def child(url: str, concurrency: int) -> None:
    """One run of ``measure_two``: ready, wait for go, run, print its report as JSON."""
    runtime = Runtime.from_settings(bench_settings(make_url(url)))
    try:
        await runtime.jobs.open()
        async with runtime.database.control_session():
            pass  # a pooled connection exists before the clock starts
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        cpu, started = time.process_time(), time.perf_counter()
        report = await BillingRun(runtime.database, runtime.accounts, concurrency=concurrency).run()
        await runtime.jobs.flush()
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        await runtime.close()
    body = {
        "subscriptions": report.subscriptions,
        "invoices": report.invoices,
        "failed": report.failed_tenants,
        "seconds": seconds,
        "cpu": cpu,
    }
    print(json.dumps(body), flush=True)


# -- checking ---------------------------------------------------------------------------------------


async def verify(connection: asyncpg.Connection, tenants: list[Tenant], period: datetime, *, charged: bool) -> int:
    """Raise unless every subscription was billed exactly once for the period starting at ``period``."""
    billed = 0
    for tenant in tenants:
        await connection.execute(f"SET search_path = {quoted_schema(tenant.schema)}")
        row = dict(await connection.fetchrow(CHECK, period, SEAT_PRICE))
        expected = len(tenant.subscriptions)
        wanted = {"subscriptions": expected, "moved": expected, "invoices": expected, "billed": expected}
        wanted |= {"numbered": expected, "lines": expected, "payments": expected if charged else 0}
        wrong = {name: (row[name], count) for name, count in wanted.items() if row[name] != count}
        if not row["gapless"]:
            wrong["gapless numbers INV-1..INV-n"] = (False, True)
        if wrong:
            raise RuntimeError(f"{tenant.schema}: (found, expected) {wrong}")
        billed += row["billed"]
    await connection.execute("RESET search_path")
    return billed


# -- report -----------------------------------------------------------------------------------------


def report(
    args: argparse.Namespace,
    runs: list[Timed],
    ceilings: list[Timed],
    loads: list[tuple[str, tuple[float, float, float]]],
) -> None:
    charged = "without charging (no provider account)" if args.no_charge else "each invoice charged (queued)"
    print(f"## Billing run: {args.tenants:,} tenants x {args.per_tenant:,} due subscriptions, {charged}\n")
    print("| what | invoices | seconds | invoices/s | this process CPU ms/invoice | PG CPU ms/invoice |")
    print("|---|---:|---:|---:|---:|---:|")
    for timed in [*runs, *ceilings]:
        postgres = f"{timed.per_thousand(timed.postgres_cpu):.3f}" if timed.postgres_cpu else "-"
        print(
            f"| {timed.label} | {timed.invoices:,} | {timed.seconds:.1f} | {timed.rate:,.0f} | "
            f"{timed.per_thousand(timed.client_cpu):.3f} | {postgres} |"
        )
    print("\n| target | ceiling | run / ceiling | result |")
    print("|---|---|---:|---|")
    for timed in runs:
        for ceiling in ceilings:
            ratio = timed.rate / ceiling.rate
            verdict = "**met**" if ratio >= TARGET else "**missed**"
            if ceiling.connections != timed.connections:  # one side had more cores' worth of help
                verdict = f"not like for like ({timed.connections} connections against {ceiling.connections})"
            elif ceiling.reference:
                verdict = "for reference: the share of PostgreSQL's rate for the same rows"
            print(f"| {timed.label} >= {TARGET:.2f} x ceiling | {ceiling.label} | {ratio:.3f} | {verdict} |")
    print(
        "\nChecked after each run: every subscription has exactly one `subscription_cycle` invoice for its new "
        "period, numbered and open, with one line of quantity x price"
        f"{'' if args.no_charge else ' and one pending payment of its total'}; every subscription moved on."
    )
    print("\nLoad average (1, 5, 15 min): " + "; ".join(f"{when} {a:.2f} {b:.2f} {c:.2f}" for when, (a, b, c) in loads))
    print(
        f"\nPython {platform.python_version()}, PostgreSQL server {args.server_version}, "
        f"SQLAlchemy {version('sqlalchemy')}, asyncpg {version('asyncpg')}, {os.cpu_count()} CPUs."
    )
    print(f"\nCommand: `{shlex.join(['uv', 'run', 'python', 'bench/billing_run.py', *args.argv])}`")


# -- main -------------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--database-url", default=DEFAULT_URL, help="admin URL; a throwaway database is made next")
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--per-tenant", type=int, default=100, help="due subscriptions per tenant")
    parser.add_argument("--no-charge", action="store_true", help="no provider account: invoices stay open")
    parser.add_argument("--no-concurrent", action="store_true", help="skip the two-process run")
    parser.add_argument("--setup-concurrency", type=int, default=4)
    parser.add_argument("--time-limit", type=float, default=3600.0, help="seconds before giving up")
    parser.add_argument("--quick", action="store_true", help="smoke run: 20 tenants x 50")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=CONCURRENT_TENANTS,
        help="tenants a run bills at once (BillingRun.concurrency); the ceiling also runs on as many connections",
    )
    parser.add_argument("--profile", metavar="FILE", help="cProfile the one-process run into FILE (slows it)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.tenants, args.per_tenant = 20, 50
    if args.tenants < 1 or args.per_tenant < 1:
        parser.error("--tenants and --per-tenant must be at least 1")
    args.argv = argv
    return args


async def benchmark(args: argparse.Namespace) -> None:
    loads = [("start", os.getloadavg())]
    async with throwaway_database(make_url(args.database_url), "bench_billing") as url:
        started = time.perf_counter()
        made = await create_tenants(url, args)
        log(f"{len(made)} tenants in {time.perf_counter() - started:.0f} s")
        monitor = await asyncpg.connect(asyncpg_dsn(url), statement_cache_size=0)
        try:
            args.server_version = await monitor.fetchval("SHOW server_version")
            tenants = await seed(monitor, made, args.per_tenant)
            period = await period_of(monitor, tenants[0])
            await monitor.execute("VACUUM ANALYZE")
            loads.append(("before the run", os.getloadavg()))
            log(f"seeded {sum(len(t.subscriptions) for t in tenants):,} due subscriptions; billing run")
            run, outcome = await measure_run(url, monitor, args.concurrency, args.profile)
            log(f"  {run.invoices:,} invoices in {run.seconds:.1f} s ({run.rate:,.0f}/s)")
            if outcome.failed_tenants:
                raise RuntimeError(f"tenants failed: {outcome.failed_tenants[:5]}")
            await verify(monitor, tenants, period, charged=not args.no_charge)
            loads.append(("after the run", os.getloadavg()))
            # A ceiling on as many connections as each run uses, so that every run gets a like-for-like
            # verdict: one run (--concurrency), two at once (twice that), and 1 for reference.
            connections = {1, args.concurrency} | (set() if args.no_concurrent else {2 * args.concurrency})
            ceilings = [await measure_ceiling(url, tenants, period, monitor, n) for n in sorted(connections)]
            templates = await event_templates(monitor, tenants[0].schema)
            ceilings.append(await measure_ceiling(url, tenants, period, monitor, args.concurrency, every_row=templates))
            for ceiling in ceilings:
                log(f"  {ceiling.label}: {ceiling.invoices:,} in {ceiling.seconds:.1f} s ({ceiling.rate:,.0f}/s)")
            runs = [run]
            if not args.no_concurrent:
                await make_due_again(monitor, tenants)
                period = await period_of(monitor, tenants[0])
                await monitor.execute("VACUUM ANALYZE")
                log("two runs at once")
                two, reports = await measure_two(url, monitor, args.concurrency)
                log(f"  {two.invoices:,} invoices in {two.seconds:.1f} s ({two.rate:,.0f}/s); {reports}")
                await verify(monitor, tenants, period, charged=not args.no_charge)
                runs.append(two)
                loads.append(("after two runs", os.getloadavg()))
        finally:
            await monitor.close()
    report(args, runs, ceilings, loads)


async def main(argv: list[str]) -> None:
    args = parse_args(argv)
    if args.child:
        await child(args.child, args.concurrency)
        return
    task = asyncio.current_task()
    assert task is not None  # noqa: S101
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    async with asyncio.timeout(args.time_limit):
        await benchmark(args)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
