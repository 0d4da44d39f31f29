"""Benchmark: usage records per second through ``POST /v1/usage-records`` (issue 7: at least 10,000/s).

What it does, in one run (loopback only, bounded, cleans up after itself):

1. creates a throwaway database ``bench_usage_<random>`` next to ``--database-url`` with the control
   schema at head, and ``--tenants`` tenants (``TenantRegistry.create``: schema at head, an API key),
   each with one customer, one metered plan (sum) and ``--subscriptions`` active subscriptions whose
   open period contains the records' timestamps, inserted with SQL;
2. for each ``--workers`` count: starts ``billplane run --no-worker --workers N`` (the venv's script,
   billplane's default settings: the API alone, as deployments that scale run it) in its own process
   group, and drives it with ``--concurrency`` httpx clients in this process, each posting batches
   of ``--batch`` records (unique ``client_event_id``s, spread over one tenant's subscriptions, the
   tenants taken in turn): a ``--warmup`` run, then ``--duration`` seconds measured, ``--repeat``
   times. Every answer must be 201 with every record accepted, else the run fails;
3. as a ceiling, the same batches inserted by ``--concurrency`` raw asyncpg connections with the
   plain ``INSERT ... SELECT FROM unnest(...)`` (no HTTP, no validation, no outcome per record);
4. checks that the records stored equal the records the API reported accepted;
5. prints records/s, requests/s, p50/p99 per request, CPU seconds per 1,000 records of the server
   processes, of this client process and of PostgreSQL's backends, the environment and the
   command; stops the server and drops the database, also on error, Ctrl-C, SIGTERM or
   ``--time-limit``.

The client, the server and PostgreSQL share the machine's cores: every figure is for the whole
stack on one box, client included.

Run:  uv run python bench/usage_ingest.py            # 1 and 2 workers, 3 x 10 s each, about 2 minutes
      uv run python bench/usage_ingest.py --quick    # smoke run: 2 workers, 1 x 3 s
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import platform
import shlex
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url

from api_throughput import bench_settings, running_server, server_environment, wait_ready
from billplane.runtime import Runtime
from support import asyncpg_dsn, group_pids, log, process_cpu, throwaway_database

DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
TARGET = 10_000  # records/s through the API (issue 7)
URL_PATH = "/v1/usage-records"
SEED = text(
    """
    WITH customer AS (INSERT INTO customers (name) VALUES ('Bench') RETURNING id),
    product AS (INSERT INTO products (name) VALUES ('API calls') RETURNING id),
    plan AS (
        INSERT INTO plans (product_id, name, pricing_model, amount, currency, billing_interval, usage_aggregation)
        SELECT id, 'Calls', 'metered', 1, 'USD', 'month', 'sum' FROM product RETURNING id
    )
    INSERT INTO subscriptions (customer_id, plan_id, status, current_period_start, current_period_end)
    SELECT customer.id, plan.id, 'active', :start, :end FROM customer, plan, generate_series(1, :n)
    RETURNING id
    """
)
CEILING_INSERT = """
    INSERT INTO usage_records (subscription_id, quantity, "timestamp", client_event_id)
    SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[], $4::text[])
    ON CONFLICT (subscription_id, client_event_id) DO NOTHING
"""


@dataclass(frozen=True)
class Tenant:
    schema: str
    key: str
    subscriptions: list[int]


@dataclass
class Run:
    label: str
    workers: int
    records: int
    requests: int
    seconds: float
    latencies: list[float] = field(default_factory=list)  # seconds per request
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    postgres_cpu: float = 0.0

    @property
    def records_per_second(self) -> float:
        return self.records / self.seconds

    def per_thousand(self, seconds: float) -> float:
        return 1000 * seconds / max(self.records, 1)

    def percentile(self, share: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


class Batches:
    """Request bodies with never-repeated client_event_ids, the tenants taken in turn."""

    def __init__(self, tenants: list[Tenant], size: int, timestamp: datetime) -> None:
        self.tenants = itertools.cycle(tenants)
        self.size = size
        self.timestamp = timestamp.isoformat()
        self.counter = itertools.count()

    def next(self) -> tuple[Tenant, list[dict[str, Any]]]:
        tenant = next(self.tenants)
        batch = next(self.counter)
        subscriptions = tenant.subscriptions
        records = [
            {
                "subscription_id": subscriptions[i % len(subscriptions)],
                "quantity": 1 + i % 7,
                "timestamp": self.timestamp,
                "client_event_id": f"b{batch}-{i}",
            }
            for i in range(self.size)
        ]
        return tenant, records


class Answer(msgspec.Struct):
    accepted: int
    duplicates: int
    refused: int


async def seed(url: URL, args: argparse.Namespace, start: datetime) -> list[Tenant]:
    runtime = Runtime.from_settings(bench_settings(url, pool_size=2, max_overflow=0))
    tenants: list[Tenant] = []
    nonce = os.urandom(2).hex()
    try:
        for index in range(args.tenants):
            async with runtime.database.control_session() as session:
                tenant, issued = await runtime.registry.create(session, f"u{nonce}_{index:03d}", f"Usage {index}")
            async with runtime.database.tenant_session(tenant.schema_name) as session:
                params = {"start": start, "end": start + timedelta(days=30), "n": args.subscriptions}
                ids = list((await session.execute(SEED, params)).scalars())
            tenants.append(Tenant(tenant.schema_name, issued.key, ids))
    finally:
        await runtime.close()
    return tenants


async def drive(port: int, batches: Batches, args: argparse.Namespace, seconds: float, run: Run) -> None:
    """``--concurrency`` clients posting batches until ``seconds`` have passed."""
    deadline = time.perf_counter() + seconds
    decoder = msgspec.json.Decoder(Answer)
    encoder = msgspec.json.Encoder()
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)

    async def client_loop(client: httpx.AsyncClient) -> None:
        while time.perf_counter() < deadline:
            tenant, records = batches.next()
            body = encoder.encode({"records": records})
            headers = {"Authorization": f"Bearer {tenant.key}", "Content-Type": "application/json"}
            started = time.perf_counter()
            response = await client.post(URL_PATH, content=body, headers=headers)
            elapsed = time.perf_counter() - started
            if response.status_code != 201:
                raise RuntimeError(f"POST {URL_PATH}: {response.status_code} {response.text[:300]}")
            answer = decoder.decode(response.content)
            if answer.accepted != len(records):
                raise RuntimeError(f"expected {len(records)} accepted, got {answer}")
            run.records += answer.accepted
            run.requests += 1
            run.latencies.append(elapsed)

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=60) as client:
        await asyncio.gather(*(client_loop(client) for _ in range(args.concurrency)))


async def backend_cpu(monitor: asyncpg.Connection, database: str, application: str | None) -> float:
    rows = await monitor.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend'"
        " AND pid <> pg_backend_pid() AND ($2::text IS NULL OR application_name = $2)",
        database,
        application,
    )
    return sum(process_cpu(row["pid"]) for row in rows)


async def measure_api(
    port: int, group: int, batches: Batches, args: argparse.Namespace, *, monitor: asyncpg.Connection, database: str
) -> Run:
    await drive(port, batches, args, args.warmup, Run("warm-up", 0, 0, 0, 0.0))
    run = Run("POST /v1/usage-records", 0, 0, 0, 0.0)
    server_before = {pid: process_cpu(pid) for pid in group_pids(group)}
    postgres_before, client_before = await backend_cpu(monitor, database, "billplane"), time.process_time()
    started = time.perf_counter()
    await drive(port, batches, args, args.duration, run)
    run.seconds = time.perf_counter() - started
    run.client_cpu = time.process_time() - client_before
    run.postgres_cpu = await backend_cpu(monitor, database, "billplane") - postgres_before
    run.server_cpu = sum(process_cpu(pid) - server_before.get(pid, 0.0) for pid in group_pids(group))
    return run


async def measure_ceiling(url: URL, tenants: list[Tenant], args: argparse.Namespace, timestamp: datetime) -> Run:
    """The same batches by raw asyncpg: one INSERT ... unnest per batch, nothing else."""
    run = Run("ceiling: INSERT ... unnest (raw asyncpg)", 0, 0, 0, 0.0)
    connections = [await asyncpg.connect(asyncpg_dsn(url), statement_cache_size=0) for _ in range(args.concurrency)]
    counter = itertools.count()
    try:

        async def loop(connection: asyncpg.Connection, deadline: float) -> None:
            while time.perf_counter() < deadline:
                batch = next(counter)
                tenant = tenants[batch % len(tenants)]
                subs = [tenant.subscriptions[i % len(tenant.subscriptions)] for i in range(args.batch)]
                quantities = [1 + i % 7 for i in range(args.batch)]
                events = [f"c{batch}-{i}" for i in range(args.batch)]
                started = time.perf_counter()
                async with connection.transaction():
                    await connection.execute(f"SET LOCAL search_path = {tenant.schema}")
                    await connection.execute(CEILING_INSERT, subs, quantities, [timestamp] * args.batch, events)
                run.latencies.append(time.perf_counter() - started)
                run.records += args.batch
                run.requests += 1

        warm = time.perf_counter() + args.warmup
        await asyncio.gather(*(loop(connection, warm) for connection in connections))
        run.records, run.requests, run.latencies = 0, 0, []
        client_before = time.process_time()
        started = time.perf_counter()
        deadline = started + args.duration
        await asyncio.gather(*(loop(connection, deadline) for connection in connections))
        run.seconds = time.perf_counter() - started
        run.client_cpu = time.process_time() - client_before
    finally:
        for connection in connections:
            await connection.close()
    return run


async def stored_records(monitor: asyncpg.Connection, tenants: list[Tenant], prefix: str) -> int:
    total = 0
    for tenant in tenants:
        total += await monitor.fetchval(
            f'SELECT count(*) FROM "{tenant.schema}".usage_records WHERE client_event_id LIKE $1', f"{prefix}%"
        )
    return total


async def benchmark(args: argparse.Namespace, admin_url: URL) -> list[Run]:
    runs: list[Run] = []
    async with throwaway_database(admin_url, "bench_usage") as url:
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
        log(f"creating {args.tenants} tenants x {args.subscriptions} metered subscriptions")
        tenants = await seed(url, args, start)
        timestamp = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
        batches = Batches(tenants, args.batch, timestamp)
        monitor = await asyncpg.connect(asyncpg_dsn(url))
        database = url.database or ""
        try:
            with tempfile.TemporaryDirectory(prefix="bench_usage_") as scratch:
                env = server_environment(url)
                for workers in args.workers:
                    with running_server("billplane", workers, env, Path(scratch)) as server:
                        await wait_ready(server, "/health")
                        for round_index in range(args.repeat):
                            run = await measure_api(
                                server.port, server.process.pid, batches, args, monitor=monitor, database=database
                            )
                            run.workers = workers
                            runs.append(run)
                            log(
                                f"  {workers} worker(s), round {round_index + 1}: "
                                f"{run.records_per_second:,.0f} records/s, p99 {1000 * run.percentile(0.99):.0f} ms"
                            )
            api_records = sum(run.records for run in runs)
            if not args.no_ceiling:
                for _ in range(args.repeat):
                    ceiling = await measure_ceiling(url, tenants, args, timestamp)
                    runs.append(ceiling)
                    log(f"  ceiling: {ceiling.records_per_second:,.0f} records/s")
            # Warm-up batches are stored too: every batch the API answered for counts once.
            stored = await stored_records(monitor, tenants, "b")
            expected = (next(batches.counter)) * args.batch
            log(f"check: {stored:,} records stored by the API, {expected:,} sent (measured: {api_records:,})")
            if stored != expected:
                raise RuntimeError(f"stored {stored} records, but {expected} were sent and accepted")
        finally:
            await monitor.close()
    return runs


def report(args: argparse.Namespace, runs: list[Run], argv: list[str]) -> None:
    print("## Usage ingestion: POST /v1/usage-records\n")
    print(f"{args.tenants} tenants x {args.subscriptions} metered subscriptions; batches of {args.batch} records;")
    print(
        f"{args.concurrency} concurrent clients; {args.repeat} x {args.duration:g} s measured"
        f" after {args.warmup:g} s.\n"
    )
    print("| run | workers | records/s | requests/s | p50 ms | p99 ms | CPU s / 1k records: server | client | PG |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for run in runs:
        workers = str(run.workers) if run.workers else "-"
        print(
            f"| {run.label} | {workers} | {run.records_per_second:,.0f} | {run.requests / run.seconds:,.1f} | "
            f"{1000 * run.percentile(0.5):.0f} | {1000 * run.percentile(0.99):.0f} | "
            f"{run.per_thousand(run.server_cpu):.3f} | {run.per_thousand(run.client_cpu):.3f} | "
            f"{run.per_thousand(run.postgres_cpu):.3f} |"
        )
    print("\n### Target\n")
    for workers in args.workers:
        rates = [run.records_per_second for run in runs if run.workers == workers]
        if rates:
            median = statistics.median(rates)
            verdict = "met" if median >= TARGET else "NOT met"
            print(f"- {workers} worker(s): median {median:,.0f} records/s vs target {TARGET:,}: {verdict}")
    ceiling = [run.records_per_second for run in runs if run.label.startswith("ceiling")]
    if ceiling:
        print(f"- ceiling (raw asyncpg, same batches): median {statistics.median(ceiling):,.0f} records/s")
    print("\n### Environment\n")
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    packages = ", ".join(
        f"{name} {version(name)}" for name in ("litestar", "sqlalchemy", "asyncpg", "httpx", "uvicorn")
    )
    print(f"- {os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()}")
    print(f"- {packages}")
    print(f"- load average at the end: {load}")
    command = f"uv run python bench/usage_ingest.py {shlex.join(argv)}".strip()
    print(f"\nCommand: `{command}`")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Usage records per second through POST /v1/usage-records.")
    parser.add_argument("--database-url", default=os.environ.get("BILLPLANE_BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--subscriptions", type=int, default=100, help="metered subscriptions per tenant")
    parser.add_argument("--batch", type=int, default=1000, help="records per request (the API takes up to 1,000)")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight at once")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="server worker processes to measure")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per round")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before each round")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per worker count")
    parser.add_argument("--no-ceiling", action="store_true", help="skip the raw asyncpg ceiling")
    parser.add_argument("--time-limit", type=float, default=900.0, help="give up (and clean up) after this long")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 workers, 1 round of 3 s")
    args = parser.parse_args(argv)
    if args.quick:
        args.workers, args.repeat, args.duration, args.warmup, args.tenants = [2], 1, 3.0, 1.0, 3
    if not 1 <= args.batch <= 1000:
        parser.error("--batch must be 1-1000")
    return args


async def main(argv: list[str]) -> None:
    args = parse_args(argv)
    task = asyncio.current_task()
    assert task is not None  # noqa: S101
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    async with asyncio.timeout(args.time_limit):
        runs = await benchmark(args, make_url(args.database_url))
    report(args, runs, argv)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
