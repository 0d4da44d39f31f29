"""Benchmark: what the worker's periodic jobs cost when nothing is due, over many tenants.

Every minute the worker runs the billing run, dunning, test clocks, the outbox sweep (with the
expiry of incomplete subscriptions) and the webhook sweep; every five minutes, payment
reconciliation. Each reads every active tenant schema (one ``UNION ALL`` read per 50), whether
anything is due or not, so this is the floor a deployment pays per tenant per minute.

What it does (loopback only, cleans up after itself):

1. creates a throwaway database with ``--tenants`` tenants through the operator API, in process,
   each with a default sandbox account, and seeds each with ``--per-tenant`` customers with an
   active subscription whose period ends in a month (nothing is due);
2. runs each job ``--rounds`` times in this process, on billplane's own ``Database``, with a
   fresh pool per job, as in a worker that has just started or recycled its connections: the
   first round pays for every backend's caches of every tenant's tables, the later ones
   (a minute later, in a worker) find them built;
3. prints, per job, the first round and the median of the later ones: seconds, and CPU of this
   process and of PostgreSQL's backends, per tenant.

Run:  uv run python bench/periodic_idle.py                  # 1,000 tenants
      uv run python bench/periodic_idle.py --tenants 100 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy.engine import URL, make_url

from api_throughput import bench_settings
from billing_run import DEFAULT_URL, SEAT_PRICE, SEED, backend_cpu, create_tenants, used
from billplane.db import tenant_scan
from billplane.events.worker import webhook_services
from billplane.payments.refund_run import RefundReconciliation
from billplane.runtime import Runtime
from billplane.sync.worker import worker_services
from billplane_tenants.naming import quoted_schema
from support import asyncpg_dsn, log, throwaway_database

Job = Callable[[Runtime], Awaitable[Any]]


def _jobs() -> dict[str, Job]:
    """The periodic jobs, as the worker's tasks call them (``billplane.sync.jobs``, ``events.jobs``)."""

    async def outbox_sweep(runtime: Runtime) -> None:
        services = worker_services(runtime)
        await services.sweeper.sweep()
        await services.expiry.expire()

    async def refunds_alone(runtime: Runtime) -> None:
        whole = worker_services(runtime).reconciliation
        refunds = RefundReconciliation(whole.database, whole.lookup, whole.settle_after, whole.pending)
        await refunds.run(await tenant_scan.active_tenants(runtime.database))

    return {
        "billing run": lambda runtime: worker_services(runtime).billing.run(),
        "dunning run": lambda runtime: worker_services(runtime).dunning.run(),
        "test clocks": lambda runtime: worker_services(runtime).clocks.run(),
        "outbox sweep and incomplete expiry": outbox_sweep,
        "webhook sweep": lambda runtime: webhook_services(runtime).sweeper.sweep(),
        "payment reconciliation (every 5 minutes)": lambda runtime: worker_services(runtime).reconciliation.run(),
        # Its refunds part alone, to show what the refunds' read adds to the job above.
        "of which refunds": refunds_alone,
    }


async def seed(connection: asyncpg.Connection, made: list[tuple[str, int | None]], per_tenant: int) -> None:
    """Customers with a default method and a subscription whose period ends in a month."""
    start = datetime.now(UTC)
    for schema, account in made:
        async with connection.transaction():
            await connection.execute(f"SET LOCAL search_path = {quoted_schema(schema)}")
            await connection.fetch(SEED, SEAT_PRICE, per_tenant, account, start, start + timedelta(days=30))


async def measure(url: URL, monitor: asyncpg.Connection, job: Job, rounds: int) -> list[tuple[float, float, float]]:
    """``rounds`` calls of ``job`` on one fresh runtime, as a worker that has just started: for
    each, (seconds, this process's CPU, the backends' CPU)."""
    runtime = Runtime.from_settings(bench_settings(url))
    measured = []
    try:
        await runtime.jobs.open()
        async with runtime.database.control_session():
            pass  # a pooled connection exists before the clock starts, as in a running worker
        for _ in range(rounds):
            before = await backend_cpu(monitor, "billplane")
            cpu, started = time.process_time(), time.perf_counter()
            await job(runtime)
            await runtime.jobs.flush()
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            measured.append((seconds, cpu, used(before, await backend_cpu(monitor, "billplane"))))
    finally:
        await runtime.close()
    return measured


def row(name: str, which: str, values: tuple[float, float, float], tenants: int) -> str:
    seconds, cpu, postgres = values
    per = 1000 / tenants
    return f"| {name} | {which} | {seconds:.2f} | {seconds * per:.2f} | {cpu * per:.2f} | {postgres * per:.2f} |"


async def benchmark(args: argparse.Namespace) -> None:
    async with throwaway_database(make_url(args.database_url), "bench_periodic") as url:
        started = time.perf_counter()
        made = await create_tenants(url, args)
        log(f"{len(made)} tenants in {time.perf_counter() - started:.0f} s")
        monitor = await asyncpg.connect(asyncpg_dsn(url), statement_cache_size=0)
        try:
            await seed(monitor, made, args.per_tenant)
            await monitor.execute("VACUUM ANALYZE")
            lines = []
            for name, job in _jobs().items():
                rounds = await measure(url, monitor, job, args.rounds)
                log(f"  {name}: {', '.join(f'{seconds:.2f} s' for seconds, _, _ in rounds)}")
                lines.append(row(name, "first", rounds[0], len(made)))
                if len(rounds) > 1:
                    later = tuple(statistics.median(values) for values in zip(*rounds[1:], strict=True))
                    lines.append(row(name, f"median of {len(rounds) - 1} more", later, len(made)))
        finally:
            await monitor.close()
    print(f"## Periodic jobs with nothing due: {args.tenants:,} tenants x {args.per_tenant} subscriptions\n")
    print("| job | round | seconds | ms per tenant | this process CPU ms per tenant | PG CPU ms per tenant |")
    print("|---|---|---:|---:|---:|---:|")
    print("\n".join(lines))
    print(f"\nLoad average at the end: {' '.join(f'{load:.2f}' for load in os.getloadavg())}; {os.cpu_count()} CPUs.")
    print(f"\nCommand: `{shlex.join(['uv', 'run', 'python', 'bench/periodic_idle.py', *args.argv])}`")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--database-url", default=DEFAULT_URL, help="admin URL; a throwaway database is made next")
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--per-tenant", type=int, default=10, help="customers and subscriptions per tenant")
    parser.add_argument("--rounds", type=int, default=3, help="calls of each job, one pool per job")
    parser.add_argument("--setup-concurrency", type=int, default=4)
    args = parser.parse_args(argv)
    if args.tenants < 1 or args.per_tenant < 0 or args.rounds < 1:
        parser.error("--tenants and --rounds must be at least 1, --per-tenant at least 0")
    args.no_charge = False  # each tenant gets a default sandbox account, as in billing_run.py
    args.argv = argv
    return args


if __name__ == "__main__":
    asyncio.run(benchmark(parse_args(sys.argv[1:])))
