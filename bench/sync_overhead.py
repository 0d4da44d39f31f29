"""Benchmark: POST /v1/customers for a tenant with a default provider account and for one without.

Issue 4's speed criterion: provider calls never run in the request that created the object, so a
create with a provider account connected costs what one without costs. Both cases are measured
in the same run, over real HTTP, against the API as deployments that scale run it:

1. creates a throwaway database ``bench_sync_<random>`` next to ``--database-url`` (loopback only)
   with the control schema at head, and through the API (in-process, for the setup only) two
   tenants: ``plain`` (no provider account) and ``synced`` (a default account of the built-in
   ``sandbox`` provider, connected like a tenant would, credentials encrypted);
2. starts ``billplane run --no-worker --workers N`` (uvicorn, uvloop, httptools; the venv's
   script, billplane's default settings) in its own process group;
3. runs wrk (``bench/wrk/requests.lua``, mode ``post``: a small JSON body) in ``--rounds``
   interleaved rounds: each round measures both tenants (after a warm-up each), the order
   alternating from round to round so drift on a shared machine hits both alike;
4. checks the result: every ``synced`` customer has its ``customer.ensure`` outbox row and
   ``sync_status`` pending, no ``plain`` customer has one, and the API process never touched the
   job queue (it holds no ``billplane-jobs`` connection at the end);
5. prints the medians, the ratio with/without in each round and its median, server and
   PostgreSQL CPU per request, and the environment; stops the server and drops the database,
   also on error, Ctrl-C, SIGTERM or ``--time-limit``.

No sync worker runs by default: the request path alone is measured, and nothing performs the
queued rows. ``--worker`` also starts one ``billplane worker`` process for the whole run; it then
mirrors the synced tenant's customers to the sandbox during its runs, on the same 2 cores.

Run:  uv run python bench/sync_overhead.py                 # 10 rounds of 5 s per tenant, about 2.5 minutes
      uv run python bench/sync_overhead.py --quick         # 2 rounds of 3 s
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy.engine import URL, make_url

from billplane.app import create_app
from billplane.settings import DatabaseSettings, SecuritySettings, Settings
from billplane_tenants.naming import quoted_schema, schema_for_slug
from support import (
    UNTHROTTLED_ENVIRONMENT,
    asyncpg_dsn,
    children_cpu,
    free_port,
    group_pids,
    log,
    process_cpu,
    throwaway_database,
    url_text,
)

DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
WRK_SCRIPT = BENCH_DIR / "wrk" / "requests.lua"
BENCH_SECRET = "bench-secret-key-" + "s" * 32
BENCH_ADMIN = "bench-admin-key-" + "a" * 32
TARGET = 0.95  # with an account, at least 95 % of the throughput without
CASES = ("plain", "synced")
LABELS = {"plain": "no provider account", "synced": "one default provider account (sandbox)"}


# -- throwaway database and tenants ---------------------------------------------------------------


@dataclass(frozen=True)
class Tenant:
    slug: str
    schema: str
    key: str


async def create_tenants(url: URL) -> dict[str, Tenant]:
    """The two tenants, and the synced one's sandbox account, through the API (in-process)."""
    settings = Settings(
        database=DatabaseSettings(url=url_text(url), pool_size=2, max_overflow=0),
        security=SecuritySettings(secret_key=BENCH_SECRET, admin_key=BENCH_ADMIN),
    )
    app = create_app(settings)
    admin = {"Authorization": f"Bearer {BENCH_ADMIN}"}
    tenants: dict[str, Tenant] = {}
    try:
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type] # Litestar types its scope narrower
        async with httpx.AsyncClient(transport=transport, base_url="http://setup") as client:
            for slug in CASES:
                made = await client.post("/v1/admin/tenants", json={"slug": slug, "name": slug.title()}, headers=admin)
                made.raise_for_status()
                body = made.json()
                tenants[slug] = Tenant(slug, schema_for_slug(slug), body["api_key"]["key"])
            account = {"provider": "sandbox", "mode": "test", "credentials": {"api_key": "sk_sandbox_bench_4242"}}
            connected = await client.post(
                "/v1/provider-accounts", json=account, headers={"Authorization": f"Bearer {tenants['synced'].key}"}
            )
            if connected.status_code != 201 or not connected.json()["is_default"]:
                raise RuntimeError(f"could not connect the sandbox account: {connected.status_code} {connected.text}")
    finally:
        await app.state.runtime.close()
    return tenants


# -- processes --------------------------------------------------------------------------------------


def server_environment(url: URL) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "BILLPLANE_DATABASE_URL": url_text(url),
            "BILLPLANE_SECRET_KEY": BENCH_SECRET,
            "BILLPLANE_ADMIN_KEY": BENCH_ADMIN,
        }
    )
    for name in ("BILLPLANE_DB_POOL_SIZE", "BILLPLANE_DB_MAX_OVERFLOW", "BILLPLANE_AUTH_CACHE_SECONDS"):
        env.pop(name, None)  # billplane's defaults are what is measured
    env.update(UNTHROTTLED_ENVIRONMENT)
    return env


def billplane_script() -> str:
    script = Path(sys.executable).with_name("billplane")
    if not script.exists():
        raise SystemExit(f"{script} not found: run with `uv run` from the repository")
    return str(script)


@dataclass
class Process:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def tail(self) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])
        except OSError:
            return ""


@contextmanager
def started(name: str, command: list[str], env: dict[str, str], scratch: Path) -> Iterator[Process]:
    """A process in its own process group, stopped (TERM, then KILL) on the way out."""
    log_path = scratch / f"{name}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
    handle = Process(name, process, log_path)
    try:
        yield handle
    finally:
        stop(handle)


def stop(handle: Process) -> None:
    group = handle.process.pid  # start_new_session: the group id is the leader's pid
    for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        with suppress(ProcessLookupError):
            os.killpg(group, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if handle.process.poll() is not None and not group_pids(group):
                return
            time.sleep(0.1)
    log(f"warning: {handle.name} (group {group}) did not stop")


def http(port: int, method: str, path: str, headers: dict[str, str], body: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback
            status: int = response.status
            return status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


async def wait_ready(server: Process, port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"the server exited with {server.process.returncode}:\n{server.tail()}")
        with suppress(OSError):
            status, _ = await asyncio.to_thread(http, port, "GET", "/health", {})
            if status == 200:
                return
        await asyncio.sleep(0.3)
    raise RuntimeError(f"the server was not ready after 60 s:\n{server.tail()}")


async def check_create(port: int, tenant: Tenant, expected_status: str) -> None:
    """One create by hand before the load: 201 and the sync status the tenant's accounts imply."""
    headers = {"Authorization": f"Bearer {tenant.key}", "Content-Type": "application/json"}
    status, body = await asyncio.to_thread(http, port, "POST", "/v1/customers", headers, b'{"name": "Check"}')
    if status != 201 or json.loads(body)["sync_status"] != expected_status:
        raise RuntimeError(f"{tenant.slug}: expected 201 with sync_status {expected_status}, got {status}: {body!r}")


# -- CPU accounting -------------------------------------------------------------------------------


async def cpu_snapshot(monitor: asyncpg.Connection, group: int) -> tuple[float, dict[int, float]]:
    """CPU seconds of the server's processes, and of each of its PostgreSQL backends."""
    backends = await monitor.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'billplane'"
    )
    return sum(process_cpu(pid) for pid in group_pids(group)), {row["pid"]: process_cpu(row["pid"]) for row in backends}


# -- measuring --------------------------------------------------------------------------------------


@dataclass
class Run:
    case: str
    round: int
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    server_ms: float  # CPU per request, all server processes
    postgres_ms: float  # CPU per request, the server's PostgreSQL backends (those live at the end)
    wrk_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


async def run_wrk(args: argparse.Namespace, port: int, pairs: Path, seconds: float) -> dict[str, float]:
    command = [
        args.wrk,
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{max(1, round(seconds))}s",
        "--latency",
        "-s",
        str(WRK_SCRIPT),
        f"http://127.0.0.1:{port}",
        "--",
        str(pairs),
        "post",
    ]
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout=seconds + 30)
    except BaseException:
        with suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise
    text = output.decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"wrk failed ({process.returncode}):\n{text}")
    for line in text.splitlines():
        if line.startswith("BENCH_RESULT "):
            result: dict[str, float] = json.loads(line.removeprefix("BENCH_RESULT "))
            return result
    raise RuntimeError(f"no BENCH_RESULT line in wrk output:\n{text}")


@dataclass
class Target:
    """The running server under load, and the connection that watches its PostgreSQL backends."""

    args: argparse.Namespace
    port: int
    group: int  # the server's process group
    monitor: asyncpg.Connection


async def measure(target: Target, case: str, pairs: Path, index: int) -> Run:
    args, port, group, monitor = target.args, target.port, target.group, target.monitor
    await run_wrk(args, port, pairs, args.warmup)
    server_before, backends_before = await cpu_snapshot(monitor, group)
    wrk_before = children_cpu()
    result = await run_wrk(args, port, pairs, args.duration)
    wrk_cpu = children_cpu() - wrk_before
    server_after, backends_after = await cpu_snapshot(monitor, group)
    requests = max(int(result["requests"]), 1)
    postgres = sum(seconds - backends_before.get(pid, 0.0) for pid, seconds in backends_after.items())
    errors = sum(int(result[key]) for key in ("connect_errors", "read_errors", "write_errors", "status_errors"))
    run = Run(
        case=case,
        round=index,
        requests=int(result["requests"]),
        seconds=result["duration_us"] / 1e6,
        p50_ms=result["p50_us"] / 1000,
        p99_ms=result["p99_us"] / 1000,
        errors=errors + int(result["timeouts"]),
        server_ms=1000 * (server_after - server_before) / requests,
        postgres_ms=1000 * postgres / requests,
        wrk_ms=1000 * wrk_cpu / requests,
    )
    log(f"  round {index + 1}, {LABELS[case]}: {run.rps:,.0f} req/s, p99 {run.p99_ms:.1f} ms, {run.errors} errors")
    return run


async def verify(monitor: asyncpg.Connection, tenants: dict[str, Tenant]) -> dict[str, tuple[int, int, int]]:
    """(customers, customer.ensure rows, pending customers) per tenant; raises if they do not add up."""
    counts: dict[str, tuple[int, int, int]] = {}
    for case, tenant in tenants.items():
        schema = quoted_schema(tenant.schema)
        customers = await monitor.fetchval(f"SELECT count(*) FROM {schema}.customers")
        ensured = await monitor.fetchval(f"SELECT count(*) FROM {schema}.outbox WHERE kind = 'customer.ensure'")
        pending = await monitor.fetchval(f"SELECT count(*) FROM {schema}.customers WHERE sync_status = 'pending'")
        counts[case] = (customers, ensured, pending)
    plain, synced = counts["plain"], counts["synced"]
    if plain[1] or plain[2]:
        raise RuntimeError(f"the plain tenant has outbox rows or pending customers: {plain}")
    if synced[1] != synced[0]:
        raise RuntimeError(f"the synced tenant has {synced[0]} customers but {synced[1]} customer.ensure rows")
    return counts


async def queue_connections(monitor: asyncpg.Connection) -> int:
    """Connections the job queue (psycopg, application_name billplane-jobs) has open now."""
    count: int = await monitor.fetchval(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND application_name = 'billplane-jobs'"
    )
    return count


# -- report ---------------------------------------------------------------------------------------


def report(
    runs: Sequence[Run], args: argparse.Namespace, counts: dict[str, tuple[int, int, int]], api_queue: int
) -> None:
    print("## POST /v1/customers with and without a provider account (wrk over HTTP)\n")
    print(
        "| tenant | req/s (median) | p50 ms | p99 ms | server CPU ms/req | PG CPU ms/req | wrk CPU ms/req "
        "| errors | req/s per round |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for case in CASES:
        mine = sorted((run for run in runs if run.case == case), key=lambda run: run.round)
        print(
            f"| {LABELS[case]} | {statistics.median(r.rps for r in mine):,.0f} | "
            f"{statistics.median(r.p50_ms for r in mine):.1f} | {statistics.median(r.p99_ms for r in mine):.1f} | "
            f"{statistics.median(r.server_ms for r in mine):.3f} | "
            f"{statistics.median(r.postgres_ms for r in mine):.3f} | "
            f"{statistics.median(r.wrk_ms for r in mine):.3f} | {sum(r.errors for r in mine)} | "
            f"{', '.join(f'{r.rps:,.0f}' for r in mine)} |"
        )
    by_round: dict[int, dict[str, float]] = {}
    for run in runs:
        by_round.setdefault(run.round, {})[run.case] = run.rps
    ratios = [rates["synced"] / rates["plain"] for _, rates in sorted(by_round.items()) if len(rates) == 2]
    median_ratio = statistics.median(ratios)
    medians = {case: statistics.median(run.rps for run in runs if run.case == case) for case in CASES}
    verdict = "**met**" if median_ratio >= TARGET else "**missed**"
    print("\n| target | ratio of medians | ratio in each round | median round ratio | result |")
    print("|---|---:|---|---:|---|")
    print(
        f"| with an account >= {TARGET:.2f} x without | {medians['synced'] / medians['plain']:.3f} | "
        f"{', '.join(f'{ratio:.3f}' for ratio in ratios)} | {median_ratio:.3f} | {verdict} |"
    )
    shared = " (the worker's too: it connects with the same application_name)" if args.worker else ""
    print(
        "\nCPU per request: the server's processes, and its PostgreSQL backends alive at the end of each run"
        f"{shared}; medians over the rounds."
    )
    print(
        f"\nChecked after the runs: plain tenant {counts['plain'][0]:,} customers, 0 outbox rows; synced tenant "
        f"{counts['synced'][0]:,} customers, {counts['synced'][1]:,} customer.ensure rows "
        f"({counts['synced'][2]:,} still pending{'' if args.worker else ': no worker ran'})."
    )
    if not args.worker:
        queue = "none (it did no queue work)" if api_queue == 0 else f"**{api_queue}** (it deferred jobs itself)"
        print(f"Job-queue connections the API process held at the end: {queue}.")


def environment(args: argparse.Namespace, server_version: str, seconds: float) -> None:
    def git(*git_args: str) -> str:
        return subprocess.run(["git", *git_args], cwd=REPO, capture_output=True, text=True, check=False).stdout.strip()

    dirty = " (uncommitted changes)" if git("status", "--porcelain", "--untracked-files=no") else ""
    load = os.getloadavg()
    print("\n## Environment\n")
    print(
        f"- machine: {os.cpu_count()} CPU cores, {platform.system()} {platform.release()}; wrk, the server, "
        f"{'the worker, ' if args.worker else ''}and PostgreSQL {server_version} share them; Python "
        f"{platform.python_version()}"
    )
    print(
        f"- `billplane run --no-worker --workers {args.workers}` (uvicorn, uvloop, httptools), default settings;"
        f" {'one `billplane worker` process ran throughout' if args.worker else 'no sync worker ran'}"
    )
    print(
        f"- wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s --latency after a {args.warmup:g} s warm-up;"
        f" {args.rounds} rounds, the order of the two tenants alternating"
    )
    print(f"- code: commit {git('rev-parse', '--short', 'HEAD') or 'unknown'}{dirty}; whole run {seconds:.0f} s")
    print(f"- load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"- command: `{shlex.join(['uv', 'run', 'python', 'bench/sync_overhead.py', *sys.argv[1:]])}`")


# -- main -----------------------------------------------------------------------------------------


async def benchmark(args: argparse.Namespace, url: URL, scratch: Path) -> None:
    started_at = time.perf_counter()
    tenants = await create_tenants(url)
    pairs = {}
    for case, tenant in tenants.items():
        pairs[case] = scratch / f"pairs_{case}.txt"
        pairs[case].write_text(f"{tenant.key} 0\n")  # the post mode uses the key only
    env = server_environment(url)
    port = free_port()
    server_command = [
        billplane_script(),
        "run",
        *("--host", "127.0.0.1", "--port", str(port), "--workers", str(args.workers)),
        "--no-worker",
    ]
    monitor = await asyncpg.connect(asyncpg_dsn(url))
    runs: list[Run] = []
    try:
        with ExitStack() as processes:
            server = processes.enter_context(started("server", server_command, env, scratch))
            if args.worker:
                processes.enter_context(started("worker", [billplane_script(), "worker"], env, scratch))
            await wait_ready(server, port)
            await check_create(port, tenants["plain"], "none")
            await check_create(port, tenants["synced"], "pending")
            target = Target(args, port, server.process.pid, monitor)
            for index in range(args.rounds):
                order = CASES if index % 2 == 0 else tuple(reversed(CASES))
                runs += [await measure(target, case, pairs[case], index) for case in order]
            api_queue = 0 if args.worker else await queue_connections(monitor)
        counts = await verify(monitor, tenants)
        server_version = await monitor.fetchval("SHOW server_version")
    finally:
        await monitor.close()
    report(runs, args, counts, api_queue)
    environment(args, server_version, time.perf_counter() - started_at)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="POST /v1/customers with and without a provider account, over HTTP.")
    parser.add_argument("--database-url", default=DEFAULT_URL, help="admin URL on a loopback server")
    # Many short rounds rather than a few long ones: on a shared machine the load drifts over
    # seconds, and a pair of short runs back to back sees nearly the same load.
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds (medians)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of each measured wrk run")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of wrk warm-up before each")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
    parser.add_argument("--worker", action="store_true", help="also run one `billplane worker` process")
    parser.add_argument("--time-limit", type=float, default=900.0, help="seconds before the run is aborted")
    parser.add_argument("--wrk", default=shutil.which("wrk") or "wrk", help="the wrk binary")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 rounds of 3 s")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.duration, args.warmup = 2, 3.0, 1.0
    if args.rounds < 1 or args.duration <= 0 or args.workers < 1:
        parser.error("--rounds, --duration and --workers must be positive")
    if shutil.which(args.wrk) is None:
        parser.error(f"wrk not found ({args.wrk}): apt-get install -y wrk")
    return args


async def main(args: argparse.Namespace) -> None:
    # SIGTERM cancels the run like Ctrl-C does, so the finally blocks still stop the server and drop the database.
    task = asyncio.current_task()
    if task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    async with throwaway_database(make_url(args.database_url), "bench_sync") as url:
        with tempfile.TemporaryDirectory(prefix="bench_sync_") as scratch:
            async with asyncio.timeout(args.time_limit):
                await benchmark(args, url, Path(scratch))


def run() -> None:
    args = parse_args()
    with suppress(KeyboardInterrupt):
        asyncio.run(main(args))


if __name__ == "__main__":
    run()
