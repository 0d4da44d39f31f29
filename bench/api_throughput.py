"""Benchmark: throughput and p99 of billplane's tenant API over HTTP, against two ceilings.

What it does, in one run (loopback only, bounded, cleans up after itself):

1. creates a throwaway database ``bench_api_<random>`` next to ``--database-url``, upgrades its
   control schema and creates ``--tenants`` tenants through ``TenantRegistry.create`` (schema at
   head plus an API key each). Tenant 0 gets ``--single-customers`` customers, every other tenant a
   seeded random count in ``[--min-customers, --max-customers]``, inserted with one SQL statement in
   a tenant session. It writes files of ``<api key> <customer id>`` pairs for the wrk script;
2. counts PostgreSQL round trips per request (billplane GET and POST, both ceiling routes) through
   an in-process counting TCP proxy, with the apps served in-process;
3. for each ``--workers`` count (default 1 and 2): starts ``billplane run --workers N`` (uvicorn,
   uvloop, httptools; the venv's ``billplane`` script with the settings in the environment) and,
   side by side, ``bench/ceiling_app.py`` with the same server options and worker count, and runs
   wrk (``-t2 -c32 --latency``, a warm-up, then a measured run) with ``bench/wrk/requests.lua`` on:

   - ceiling B ``GET /sa/{id}`` (SQLAlchemy ORM ``session.get``) on tenant 0's schema, no auth,
     no tenancy;
   - ``GET /v1/customers/{id}``: 1 tenant (its customers), then all tenants (a random pair);
   - ceiling A ``GET /raw/{id}`` (raw asyncpg), like ceiling B;
   - ``POST /v1/customers`` (small JSON body): the same two spreads, without and with a unique
     ``Idempotency-Key`` per request;

   in rounds (``--repeat`` rounds of the GET and ceiling runs, ``--post-repeat`` of the POSTs),
   each round in that order, so the runs a target compares follow each other and the ratio can be
   taken within each round. For each run it records requests/s, p50/p99, errors and non-2xx
   answers, CPU time per request of the server processes, of the database's PostgreSQL backends
   and of wrk, PostgreSQL transactions (commits, rollbacks) per request and connections opened;
4. prints Markdown tables, the targets with their ratios, the environment and the command;
5. stops every server it started and drops the database, also on error, Ctrl-C, SIGTERM or
   ``--time-limit``.

wrk and the servers share the machine's cores (and PostgreSQL too): every figure is for the whole
stack on one box, client included.

Run:  uv run python bench/api_throughput.py            # 1,000 tenants, about 9 minutes
      uv run python bench/api_throughput.py --quick    # smoke run: 30 tenants, 1 worker count, 2 s runs
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import platform
import random
import secrets
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from types import ModuleType
from typing import Any

import asyncpg
import sqlalchemy
import uvicorn
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url

from billplane.api.auth import LISTENING_TTL_SECONDS
from billplane.app import create_app
from billplane.runtime import Runtime
from billplane.settings import DatabaseSettings, SecuritySettings, Settings
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
CEILING_APP = BENCH_DIR / "ceiling_app.py"
# Keys issued here die with the database; the servers need the same secret to verify them.
BENCH_SECRET = "bench-secret-key-" + "s" * 32
BENCH_ADMIN = "bench-admin-key-" + "a" * 32
TENANTS_PER_TRANSACTION = 4  # ~270 locks per tenant until commit; the lock table is shared with other jobs
CREATORS = 2  # concurrent tenant-creating sessions (2 cores)
ROUND_TRIP_SAMPLES = 50
GET_TARGET = 1.0  # billplane GET, 1 tenant, at least the plain-SQLAlchemy ceiling
SPREAD_TARGET = 0.8  # billplane GET over all tenants, at least 80 % of 1 tenant
STATS_SETTLE_SECONDS = 1.3  # PostgreSQL 15 backends flush their statistics at most once a second
POST_BODY = {"name": "Bench Customer", "email": "bench@example.com", "metadata": {"source": "wrk"}}


# -- scenarios -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    server: str  # "billplane" or "ceiling"
    label: str  # what the table shows
    mode: str  # the wrk script's MODE
    spread: str  # "single" or "all": which pairs file

    @property
    def compared(self) -> bool:
        """GETs and ceilings: the runs the targets compare (repeated --repeat times; POSTs --post-repeat)."""
        return self.mode in {"get", "raw", "sa"}


# Each server's connections carry an application_name: PostgreSQL CPU is counted for the one measured.
APPLICATION_NAMES = {"billplane": "billplane", "ceiling": "bench_ceiling"}


def scenarios(*, idempotency: bool) -> list[Scenario]:
    """In the order of one round: the runs each target compares follow each other."""
    listed = [
        Scenario("ceiling", "ceiling B: GET /sa/{id} (SQLAlchemy ORM)", "sa", "single"),
        Scenario("billplane", "GET /v1/customers/{id}", "get", "single"),
        Scenario("billplane", "GET /v1/customers/{id}", "get", "all"),
        Scenario("ceiling", "ceiling A: GET /raw/{id} (raw asyncpg)", "raw", "single"),
        Scenario("billplane", "POST /v1/customers", "post", "single"),
        Scenario("billplane", "POST /v1/customers", "post", "all"),
    ]
    if idempotency:
        listed += [
            Scenario("billplane", "POST /v1/customers + Idempotency-Key", "post-idem", "single"),
            Scenario("billplane", "POST /v1/customers + Idempotency-Key", "post-idem", "all"),
        ]
    return listed


TABLE_ORDER = ["get", "post", "post-idem", "raw", "sa"]


@dataclass
class Measurement:
    scenario: Scenario
    workers: int
    round: int
    result: dict[str, float]  # the wrk script's BENCH_RESULT
    server_cpu: float  # seconds, all processes of the server
    postgres_cpu: float  # seconds, the database's backends
    wrk_cpu: float  # seconds
    machine_busy: float  # share of all cores' time not idle (nor waiting for I/O) during the run
    commits: int
    rollbacks: int
    sessions: int  # PostgreSQL connections opened during the run

    @property
    def requests(self) -> float:
        return self.result["requests"]

    @property
    def rps(self) -> float:
        return self.result["requests"] / (self.result["duration_us"] / 1e6)

    @property
    def errors(self) -> int:
        keys = ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
        return int(sum(self.result[key] for key in keys))


@dataclass
class Fixture:
    """What setup produced: the pairs files and a few values the checks need."""

    pairs: dict[str, Path]  # "single" / "all" -> file
    single_schema: str
    single_key: str
    single_ids: list[int]
    tenants: int
    customers: int
    setup_seconds: float
    counts: list[int] = field(default_factory=list)


# -- throwaway database --------------------------------------------------------------------------


def bench_settings(url: URL, *, pool_size: int = 5, max_overflow: int = 5) -> Settings:
    return Settings(
        database=DatabaseSettings(url=url_text(url), pool_size=pool_size, max_overflow=max_overflow),
        security=SecuritySettings(secret_key=BENCH_SECRET, admin_key=BENCH_ADMIN),
    )


def server_environment(url: URL) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "BILLPLANE_DATABASE_URL": url_text(url),
            "BILLPLANE_SECRET_KEY": BENCH_SECRET,
            "BILLPLANE_ADMIN_KEY": BENCH_ADMIN,
            "BENCH_CEILING_DATABASE_URL": url_text(url),
        }
    )
    for name in ("BILLPLANE_DB_POOL_SIZE", "BILLPLANE_DB_MAX_OVERFLOW", "BILLPLANE_AUTH_CACHE_SECONDS"):
        env.pop(name, None)  # billplane's defaults are what is measured
    env.update(UNTHROTTLED_ENVIRONMENT)
    return env


# -- setup: tenants, customers, pairs files --------------------------------------------------------

INSERT_CUSTOMERS = text(
    "INSERT INTO customers (email, name, external_id, metadata) "
    "SELECT 'customer' || g || '@example.com', 'Customer ' || g, 'ext_' || g, "
    "jsonb_build_object('segment', 'seed', 'n', g::text) "
    "FROM generate_series(1, :n) AS g RETURNING id"
)


async def create_tenants(runtime: Runtime, counts: Sequence[int], nonce: str) -> list[tuple[str, str, list[int]]]:
    """(schema, api key, customer ids) per tenant, in order; CREATORS sessions at a time."""
    results: list[tuple[str, str, list[int]] | None] = [None] * len(counts)
    batches = [
        range(start, min(start + TENANTS_PER_TRANSACTION, len(counts)))
        for start in range(0, len(counts), TENANTS_PER_TRANSACTION)
    ]
    queue: asyncio.Queue[range] = asyncio.Queue()
    for batch in batches:
        queue.put_nowait(batch)
    started = time.perf_counter()

    async def creator() -> None:
        while not queue.empty():
            batch = queue.get_nowait()
            created: list[tuple[int, str, str]] = []
            async with runtime.database.control_session() as session:
                for index in batch:
                    tenant, issued = await runtime.registry.create(session, f"b{nonce}_{index:04d}", f"Bench {index}")
                    created.append((index, tenant.schema_name, issued.key))
            for index, schema, key in created:
                async with runtime.database.tenant_session(schema) as session:
                    ids = list((await session.execute(INSERT_CUSTOMERS, {"n": counts[index]})).scalars())
                results[index] = (schema, key, ids)
            done = sum(result is not None for result in results)
            if done % 100 == 0 or done == len(counts):
                log(f"  {done}/{len(counts)} tenants ({time.perf_counter() - started:.0f} s)")

    await asyncio.gather(*(creator() for _ in range(CREATORS)))
    return [result for result in results if result is not None]


async def build_fixture(args: argparse.Namespace, url: URL, scratch: Path) -> Fixture:
    started = time.perf_counter()
    rng = random.Random(args.seed)
    counts = [args.single_customers] + [
        rng.randint(args.min_customers, args.max_customers) for _ in range(args.tenants - 1)
    ]
    log(f"creating {args.tenants} tenants ({sum(counts)} customers)")
    runtime = Runtime.from_settings(bench_settings(url, pool_size=CREATORS, max_overflow=0))
    try:
        tenants = await create_tenants(runtime, counts, secrets.token_hex(2))
    finally:
        await runtime.close()
    if len(tenants) != args.tenants:
        raise RuntimeError(f"created {len(tenants)} tenants, expected {args.tenants}")
    single = scratch / "pairs_single.txt"
    spread = scratch / "pairs_all.txt"
    schema, key, ids = tenants[0]
    single.write_text("".join(f"{key} {row_id}\n" for row_id in ids))
    spread.write_text("".join(f"{k} {row_id}\n" for _, k, row_ids in tenants for row_id in row_ids))
    await analyze(url)
    return Fixture(
        pairs={"single": single, "all": spread},
        single_schema=schema,
        single_key=key,
        single_ids=ids,
        tenants=len(tenants),
        customers=sum(len(row_ids) for _, _, row_ids in tenants),
        setup_seconds=time.perf_counter() - started,
        counts=counts,
    )


async def analyze(url: URL) -> None:
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await connection.execute("ANALYZE")
    finally:
        await connection.close()


# -- round trips per request (in-process, through a counting proxy) --------------------------------


SSL_REQUEST_CODE = 80877103
MESSAGE_NAMES = {
    "Q": "Query",
    "P": "Parse",
    "B": "Bind",
    "D": "Describe",
    "E": "Execute",
    "S": "Sync",
    "C": "Close",
    "H": "Flush",
    "X": "Terminate",
}


class ClientDecoder:
    """Splits what a PostgreSQL client sends into protocol messages, named with their SQL."""

    def __init__(self) -> None:
        self.buffer = b""
        self.started = False

    def feed(self, data: bytes) -> list[str]:
        self.buffer += data
        messages: list[str] = []
        while True:
            if not self.started:  # untyped SSLRequest / StartupMessage: int32 length, int32 code
                if len(self.buffer) < 8:
                    return messages
                length = int.from_bytes(self.buffer[:4], "big")
                if len(self.buffer) < length:
                    return messages
                code = int.from_bytes(self.buffer[4:8], "big")
                self.started = code != SSL_REQUEST_CODE
                messages.append("SSLRequest" if code == SSL_REQUEST_CODE else "Startup")
                self.buffer = self.buffer[length:]
                continue
            if len(self.buffer) < 5:
                return messages
            kind = chr(self.buffer[0])
            length = int.from_bytes(self.buffer[1:5], "big")
            if len(self.buffer) < 1 + length:
                return messages
            body = self.buffer[5 : 1 + length]
            self.buffer = self.buffer[1 + length :]
            messages.append(describe_message(kind, body))


def describe_message(kind: str, body: bytes) -> str:
    name = MESSAGE_NAMES.get(kind, kind)
    if kind == "Q":
        sql = body.rstrip(b"\0").decode(errors="replace")
    elif kind == "P":  # statement name, then the query
        sql = body.split(b"\0", 2)[1].decode(errors="replace")
    elif kind == "C":
        return f"Close {'statement' if body[:1] == b'S' else 'portal'}"
    else:
        return name
    sql = " ".join(sql.split())
    return f"{name} `{sql[:70]}{'...' if len(sql) > 70 else ''}`"


class CountingProxy:
    """A TCP proxy to PostgreSQL that counts round trips: each time a client sends after the server
    has answered (or sends first) is one. It also keeps the client's messages, grouped by round trip,
    in ``trace``. Good enough for a request/response protocol with one client per connection."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.round_trips = 0
        self.trace: list[list[str]] = []
        self.server: asyncio.Server | None = None
        self.port = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection(*self.target)
        awaiting_reply = [False]  # the client has sent and not yet heard back
        decoder = ClientDecoder()

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, from_client: bool) -> None:
            try:
                while data := await reader.read(65536):
                    if from_client:
                        if not awaiting_reply[0]:
                            self.round_trips += 1
                            self.trace.append([])
                            awaiting_reply[0] = True
                        self.trace[-1].extend(decoder.feed(data))
                    else:
                        awaiting_reply[0] = False
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                with suppress(Exception):
                    writer.close()

        tasks = [
            asyncio.create_task(pipe(client_reader, server_writer, from_client=True)),
            asyncio.create_task(pipe(server_reader, client_writer, from_client=False)),
        ]
        self._tasks.update(tasks)
        await asyncio.gather(*tasks)
        self._tasks.difference_update(tasks)


def load_ceiling_app() -> ModuleType:
    """bench/ceiling_app.py as a module: it is a script next to this one, not part of a package."""
    spec = importlib.util.spec_from_file_location("ceiling_app", CEILING_APP)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {CEILING_APP}")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("ceiling_app", module)  # Litestar resolves handler annotations through it
    spec.loader.exec_module(module)
    return module


@contextmanager
def proxy_in_thread(host: str, port: int) -> Iterator[CountingProxy]:
    """The proxy on its own event loop: Litestar's test client blocks the caller's loop per request."""
    proxy = CountingProxy(host, port)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="counting-proxy", daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(proxy.start(), loop).result(timeout=10)
        yield proxy
    finally:
        with suppress(Exception):
            asyncio.run_coroutine_threadsafe(proxy.stop(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


@dataclass
class RoundTrips:
    per_request: dict[str, float]  # mean over ROUND_TRIP_SAMPLES warm requests
    traces: dict[str, list[list[str]]]  # the last request's client messages, by round trip


async def count_round_trips(url: URL, fixture: Fixture) -> RoundTrips:
    """Round trips to PostgreSQL per request, warm (pool connected, key cached, one request before)."""
    with proxy_in_thread(url.host or "127.0.0.1", url.port or 5432) as proxy:
        return await _count_round_trips(proxy, url, fixture)


async def _count_round_trips(proxy: CountingProxy, url: URL, fixture: Fixture) -> RoundTrips:
    proxied = url.set(host="127.0.0.1", port=proxy.port)
    counts: dict[str, float] = {}
    traces: dict[str, list[list[str]]] = {}
    build_app = load_ceiling_app().build_app
    headers = {"Authorization": f"Bearer {fixture.single_key}"}
    app = create_app(bench_settings(proxied))
    ceiling = build_app(url_text(proxied), fixture.single_schema)
    samples: list[tuple[str, Litestar, str, str, dict[str, str]]] = [
        ("billplane GET", app, "GET", "/v1/customers/{id}", headers),
        ("billplane POST", app, "POST", "/v1/customers", headers),
        ("billplane POST + Idempotency-Key", app, "POST", "/v1/customers", headers),
        ("ceiling A raw asyncpg", ceiling, "GET", "/raw/{id}", {}),
        ("ceiling B SQLAlchemy ORM", ceiling, "GET", "/sa/{id}", {}),
    ]
    for name, target, method, path, extra in samples:
        async with AsyncTestClient(target) as client:
            for sample in range(ROUND_TRIP_SAMPLES + 1):
                if sample == 1:  # the first request warms the pool and the key cache
                    before = proxy.round_trips
                row_id = fixture.single_ids[sample % len(fixture.single_ids)]
                request_headers = dict(extra)
                if "Idempotency-Key" in name:
                    request_headers["Idempotency-Key"] = f"rt-{secrets.token_hex(8)}"
                mark = len(proxy.trace)
                response = await client.request(
                    method,
                    path.format(id=row_id),
                    headers=request_headers,
                    json=POST_BODY if method == "POST" else None,
                )
                if response.status_code not in {200, 201}:
                    raise RuntimeError(f"{name}: {response.status_code} {response.text[:200]}")
            counts[name] = (proxy.round_trips - before) / ROUND_TRIP_SAMPLES
            traces[name] = proxy.trace[mark:]
    return RoundTrips(counts, traces)


# -- servers ---------------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    workers: int
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    def tail(self) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])
        except OSError:
            return ""


def server_command(kind: str, workers: int, port: int) -> list[str]:
    if kind == "billplane":
        script = Path(sys.executable).with_name("billplane")
        if not script.exists():
            raise SystemExit(f"{script} not found: run with `uv run` from the repository")
        # --no-worker: the API alone, as deployments that scale run it (workers in their own
        # processes); an in-process sync worker's periodic sweep would otherwise share the cores.
        listen = ["--host", "127.0.0.1", "--port", str(port)]
        return [str(script), "run", *listen, "--workers", str(workers), "--no-worker"]
    return [sys.executable, str(CEILING_APP), "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]


@contextmanager
def running_server(kind: str, workers: int, env: dict[str, str], scratch: Path) -> Iterator[Server]:
    """A server in its own process group, stopped (TERM, then KILL) on the way out."""
    port = free_port()
    log_path = scratch / f"{kind}_{workers}w.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            server_command(kind, workers, port),
            cwd=REPO,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(kind, workers, process, port, log_path)
    try:
        yield server
    finally:
        stop_server(server)


def stop_server(server: Server) -> None:
    group = server.process.pid  # start_new_session: the group id is the leader's pid
    for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        with suppress(ProcessLookupError):
            os.killpg(group, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if server.process.poll() is not None and not group_pids(group):
                return
            time.sleep(0.1)
    log(f"warning: {server.name} (group {group}) did not stop")


def http_request(
    port: int, method: str, path: str, headers: dict[str, str] | None = None, body: bytes | None = None
) -> tuple[int, bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            status: int = response.status
            return status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


async def wait_ready(server: Server, path: str) -> None:
    timeout = 180.0  # a server starting on a machine loaded by other jobs took over 60 s
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {server.process.returncode}:\n{server.tail()}")
        with suppress(OSError):
            status, _ = await asyncio.to_thread(http_request, server.port, "GET", path)
            if status == 200:
                return
        await asyncio.sleep(0.3)
    raise RuntimeError(f"{server.name} not ready after {timeout:.0f} s:\n{server.tail()}")


async def check_scenario(server: Server, scenario: Scenario, fixture: Fixture) -> None:
    """One request by hand before the load: the right status and the right customer."""
    row_id = fixture.single_ids[0]
    auth = {"Authorization": f"Bearer {fixture.single_key}"}
    if scenario.mode == "get":
        status, body = await asyncio.to_thread(http_request, server.port, "GET", f"/v1/customers/{row_id}", auth)
        expected = 200
    elif scenario.mode in {"post", "post-idem"}:
        headers = {**auth, "Content-Type": "application/json"}
        if scenario.mode == "post-idem":
            headers["Idempotency-Key"] = f"check-{secrets.token_hex(8)}"
        payload = json.dumps(POST_BODY).encode()
        status, body = await asyncio.to_thread(http_request, server.port, "POST", "/v1/customers", headers, payload)
        expected = 201
    else:
        status, body = await asyncio.to_thread(http_request, server.port, "GET", f"/{scenario.mode}/{row_id}")
        expected = 200
    if status != expected:
        raise RuntimeError(f"{scenario.label}: expected {expected}, got {status}: {body[:300]!r}")
    answer = json.loads(body)
    if expected == 200 and answer.get("id") != row_id:
        raise RuntimeError(f"{scenario.label}: asked for {row_id}, got {answer.get('id')}")


# -- CPU and PostgreSQL accounting -----------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    server: dict[int, float]  # CPU seconds per server process
    backends: dict[int, float]  # CPU seconds per live client backend of the database
    applications: dict[int, str]  # application_name per backend
    commits: int
    rollbacks: int
    sessions: int  # sessions (connections) ever established to the database


@dataclass(frozen=True)
class Usage:
    server_cpu: float
    postgres_cpu: dict[str, float]  # by application_name ("billplane", "bench_ceiling", ...)
    commits: int
    rollbacks: int
    sessions: int


class Accounting:
    """CPU seconds of the server's processes and of the database's client backends, and its transactions.

    A backend that exits during the run (a pool closing an overflow connection) takes its CPU time
    with it, so the PostgreSQL CPU figure is a lower bound when connections were opened during the
    run (see the "PG connections opened" column); background workers (autovacuum) are not counted."""

    def __init__(self, monitor: Any, database: str, group: int) -> None:
        self.monitor = monitor
        self.database = database
        self.group = group

    async def snapshot(self) -> Snapshot:
        await asyncio.sleep(STATS_SETTLE_SECONDS)
        backends = await self.monitor.fetch(
            "SELECT pid, application_name FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend'"
            " AND pid <> pg_backend_pid()",
            self.database,
        )
        await self.monitor.execute("SELECT pg_stat_clear_snapshot()")
        row = await self.monitor.fetchrow(
            "SELECT xact_commit, xact_rollback, sessions FROM pg_stat_database WHERE datname = $1", self.database
        )
        return Snapshot(
            server={pid: process_cpu(pid) for pid in group_pids(self.group)},
            backends={backend["pid"]: process_cpu(backend["pid"]) for backend in backends},
            applications={backend["pid"]: backend["application_name"] for backend in backends},
            commits=int(row["xact_commit"]),
            rollbacks=int(row["xact_rollback"]),
            sessions=int(row["sessions"]),
        )

    @staticmethod
    def usage(before: Snapshot, after: Snapshot) -> Usage:
        postgres: dict[str, float] = {}
        for pid, seconds in after.backends.items():
            name = after.applications.get(pid) or "?"
            postgres[name] = postgres.get(name, 0.0) + seconds - before.backends.get(pid, 0.0)
        return Usage(
            server_cpu=cpu_delta(before.server, after.server),
            postgres_cpu=postgres,
            commits=after.commits - before.commits,
            rollbacks=after.rollbacks - before.rollbacks,
            sessions=after.sessions - before.sessions,
        )


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


# -- wrk ---------------------------------------------------------------------------------------------


async def run_wrk(args: argparse.Namespace, port: int, scenario: Scenario, pairs: Path, seconds: float) -> str:
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
        scenario.mode,
        secrets.token_hex(4),
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
    text_output = output.decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"wrk failed ({process.returncode}):\n{text_output}")
    return text_output


def parse_result(output: str) -> dict[str, float]:
    for line in output.splitlines():
        if line.startswith("BENCH_RESULT "):
            parsed: dict[str, float] = json.loads(line.removeprefix("BENCH_RESULT "))
            return parsed
    raise RuntimeError(f"no BENCH_RESULT line in wrk output:\n{output}")


def machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs since boot, from /proc/stat."""
    fields = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal (guest is inside user)
    return total - idle, total


def busy_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    return (after[0] - before[0]) / max(after[1] - before[1], 1)


async def measure(
    args: argparse.Namespace,
    server: Server,
    scenario: Scenario,
    fixture: Fixture,
    accounting: Accounting,
    *,
    round_index: int,
) -> Measurement:
    await check_scenario(server, scenario, fixture)
    pairs = fixture.pairs[scenario.spread]
    await run_wrk(args, server.port, scenario, pairs, args.warmup)
    before = await accounting.snapshot()
    wrk_before, machine_before = children_cpu(), machine_ticks()
    output = await run_wrk(args, server.port, scenario, pairs, args.duration)
    wrk_cpu, machine_after = children_cpu() - wrk_before, machine_ticks()
    usage = Accounting.usage(before, await accounting.snapshot())
    if args.verbose:
        print(output, file=sys.stderr)
    measurement = Measurement(
        scenario=scenario,
        workers=server.workers,
        round=round_index,
        result=parse_result(output),
        server_cpu=usage.server_cpu,
        postgres_cpu=usage.postgres_cpu.get(APPLICATION_NAMES[scenario.server], 0.0),
        wrk_cpu=wrk_cpu,
        machine_busy=busy_share(machine_before, machine_after),
        commits=usage.commits,
        rollbacks=usage.rollbacks,
        sessions=usage.sessions,
    )
    others = {
        name: seconds for name, seconds in usage.postgres_cpu.items() if name != APPLICATION_NAMES[scenario.server]
    }
    log(
        f"  {scenario.label} [{spread_label(scenario, fixture)}], {measurement.workers} worker(s): "
        f"{measurement.rps:,.0f} req/s, p99 {measurement.result['p99_us'] / 1000:.2f} ms, "
        f"{measurement.errors} errors, machine busy {100 * measurement.machine_busy:.0f} %, PG CPU s: "
        f"{measurement.postgres_cpu:.2f} (other connections: {', '.join(f'{k} {v:.2f}' for k, v in others.items())})"
    )
    return measurement


@dataclass
class Context:
    """What every server run needs."""

    args: argparse.Namespace
    env: dict[str, str]
    scratch: Path
    fixture: Fixture
    monitor: Any  # asyncpg.Connection to the benchmark database
    database: str


async def run_worker_count(context: Context, workers: int, chosen: Sequence[Scenario]) -> list[Measurement]:
    """billplane and the ceiling app both up (an idle server costs nothing), then the rounds."""
    args, fixture = context.args, context.fixture
    results: list[Measurement] = []
    with ExitStack() as stack:
        servers: dict[str, Server] = {}
        for kind in ("billplane", "ceiling"):
            servers[kind] = stack.enter_context(running_server(kind, workers, context.env, context.scratch))
        await wait_ready(servers["billplane"], "/health")
        await wait_ready(servers["ceiling"], f"/raw/{fixture.single_ids[0]}")
        ports = ", ".join(f"{kind} on {server.port}" for kind, server in servers.items())
        log(f"{workers} worker(s) each: {ports}")
        accountings = {
            kind: Accounting(context.monitor, context.database, server.process.pid) for kind, server in servers.items()
        }
        for round_index in range(max(args.repeat, args.post_repeat)):
            for scenario in chosen:
                if round_index < (args.repeat if scenario.compared else args.post_repeat):
                    server = servers[scenario.server]
                    results.append(
                        await measure(
                            args, server, scenario, fixture, accountings[scenario.server], round_index=round_index
                        )
                    )
    return results


# -- report ----------------------------------------------------------------------------------------


def spread_label(scenario: Scenario, fixture: Fixture) -> str:
    if scenario.server == "ceiling":
        return "1 schema"
    return "1 tenant" if scenario.spread == "single" else f"{fixture.tenants:,} tenants"


@dataclass(frozen=True)
class Summary:
    """A configuration over its runs: medians of rates and latencies, per-request figures pooled."""

    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    server_ms: float  # CPU ms per request
    postgres_ms: float
    wrk_ms: float
    busy: float  # median share of the machine's CPU time in use
    commits: float  # per request
    rollbacks: float
    sessions: int  # connections opened, all runs
    runs: list[float]  # req/s of each run


def summarize(runs: Sequence[Measurement]) -> Summary:
    requests = max(sum(run.requests for run in runs), 1)
    return Summary(
        rps=statistics.median(run.rps for run in runs),
        p50_ms=statistics.median(run.result["p50_us"] for run in runs) / 1000,
        p99_ms=statistics.median(run.result["p99_us"] for run in runs) / 1000,
        errors=sum(run.errors for run in runs),
        server_ms=1000 * sum(run.server_cpu for run in runs) / requests,
        postgres_ms=1000 * sum(run.postgres_cpu for run in runs) / requests,
        wrk_ms=1000 * sum(run.wrk_cpu for run in runs) / requests,
        busy=statistics.median(run.machine_busy for run in runs),
        commits=sum(run.commits for run in runs) / requests,
        rollbacks=sum(run.rollbacks for run in runs) / requests,
        sessions=sum(run.sessions for run in runs),
        runs=[run.rps for run in runs],
    )


def group_runs(measurements: Sequence[Measurement]) -> dict[tuple[Scenario, int], list[Measurement]]:
    """Runs by (scenario, workers), in table order: workers, then billplane GET, POST, ceilings."""
    groups: dict[tuple[Scenario, int], list[Measurement]] = {}
    ordered = sorted(
        measurements,
        key=lambda m: (m.workers, TABLE_ORDER.index(m.scenario.mode), m.scenario.spread != "single", m.round),
    )
    for measurement in ordered:
        groups.setdefault((measurement.scenario, measurement.workers), []).append(measurement)
    return groups


def results_table(measurements: Sequence[Measurement], fixture: Fixture) -> str:
    header = (
        "| Workers | Endpoint | Spread | req/s | p50 ms | p99 ms | errors | server CPU ms/req | "
        "PG CPU ms/req | wrk CPU ms/req | machine CPU busy | PG commits/req | PG rollbacks/req | "
        "PG connections opened | req/s per run |"
    )
    lines = [header, "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for (scenario, workers), runs in group_runs(measurements).items():
        run = summarize(runs)
        extra = " | " + ", ".join(f"{rps:,.0f}" for rps in run.runs)
        lines.append(
            f"| {workers} | {scenario.label} | {spread_label(scenario, fixture)} | {run.rps:,.0f} | "
            f"{run.p50_ms:.2f} | {run.p99_ms:.2f} | {run.errors} | {run.server_ms:.3f} | {run.postgres_ms:.3f} | "
            f"{run.wrk_ms:.3f} | {100 * run.busy:.0f} % | {run.commits:.2f} | {run.rollbacks:.2f} | "
            f"{run.sessions:,}{extra} |"
        )
    return "\n".join(lines)


def find(measurements: Sequence[Measurement], workers: int, mode: str, spread: str) -> Summary | None:
    runs = [m for m in measurements if m.workers == workers and m.scenario.mode == mode and m.scenario.spread == spread]
    return summarize(runs) if runs else None


def paired_ratios(
    measurements: Sequence[Measurement], workers: int, numerator: tuple[str, str], denominator: tuple[str, str]
) -> list[float]:
    """The ratio within each round: the two runs ran one after the other, so drift hits both alike."""
    by_round: dict[int, dict[tuple[str, str], float]] = {}
    for m in measurements:
        if m.workers == workers:
            by_round.setdefault(m.round, {})[(m.scenario.mode, m.scenario.spread)] = m.rps
    return [
        runs[numerator] / runs[denominator]
        for _, runs in sorted(by_round.items())
        if numerator in runs and denominator in runs
    ]


@dataclass(frozen=True)
class Target:
    name: str
    numerator: tuple[str, str]  # (mode, spread)
    denominator: tuple[str, str]
    minimum: float | None  # None: context only


def targets(fixture: Fixture) -> list[Target]:
    return [
        Target("1 tenant: billplane GET / ceiling B (SQLAlchemy ORM)", ("get", "single"), ("sa", "single"), GET_TARGET),
        Target(
            f"{fixture.tenants:,} tenants: billplane GET / billplane GET 1 tenant",
            ("get", "all"),
            ("get", "single"),
            SPREAD_TARGET,
        ),
        Target(
            "(context) 1 tenant: billplane GET / ceiling A (raw asyncpg)", ("get", "single"), ("raw", "single"), None
        ),
        Target("(context) ceiling B / ceiling A", ("sa", "single"), ("raw", "single"), None),
    ]


def targets_table(measurements: Sequence[Measurement], fixture: Fixture, workers: Sequence[int]) -> str:
    header = (
        "| Target | Workers | req/s (medians) | Ratio of medians | Ratio in each round | Median round ratio | Target"
    )
    lines = [header + " | Met? |", "|---|---:|---|---:|---|---:|---:|---|"]
    for target in targets(fixture):
        for count in workers:
            top = find(measurements, count, *target.numerator)
            bottom = find(measurements, count, *target.denominator)
            if top is None or bottom is None:
                continue
            ratio = top.rps / bottom.rps
            rounds = paired_ratios(measurements, count, target.numerator, target.denominator)
            # Judged on the ratio within rounds: its two runs ran back to back, so drift on a shared
            # machine hits both alike (falls back to the ratio of medians without complete rounds).
            judged = statistics.median(rounds) if rounds else ratio
            if target.minimum is None:
                goal, verdict = "-", "-"
            else:
                goal, verdict = f">= {target.minimum:.2f}", "**met**" if judged >= target.minimum else "**missed**"
            lines.append(
                f"| {target.name} | {count} | {top.rps:,.0f} / {bottom.rps:,.0f} | {ratio:.3f} | "
                f"{', '.join(f'{r:.3f}' for r in rounds)} | {judged:.3f} | {goal} | {verdict} |"
            )
    return "\n".join(lines)


def round_trip_table(round_trips: RoundTrips) -> str:
    lines = ["| Request | PostgreSQL round trips per request |", "|---|---:|"]
    lines += [f"| {name} | {count:.1f} |" for name, count in round_trips.per_request.items()]
    return "\n".join(lines)


def trace_listing(round_trips: RoundTrips) -> str:
    """What the client sends in each round trip of one warm request."""
    blocks = []
    for name, trace in round_trips.traces.items():
        lines = [f"{name} ({len(trace)} round trips):", ""]
        lines += [f"{index:>3}. " + ", ".join(messages) for index, messages in enumerate(trace, 1)]
        blocks.append("\n".join(lines))
    return "```\n" + "\n\n".join(blocks) + "\n```"


async def environment(url: URL, fixture: Fixture, args: argparse.Namespace, seconds: float) -> list[str]:
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        server_version = await connection.fetchval("SHOW server_version")
        settings = await connection.fetch(
            "SELECT name, setting FROM pg_settings WHERE name IN"
            " ('synchronous_commit', 'fsync', 'autovacuum', 'shared_buffers', 'max_connections') ORDER BY name"
        )
        size = await connection.fetchval("SELECT pg_size_pretty(pg_database_size(current_database()))")
    finally:
        await connection.close()
    wrk_version = await asyncio.to_thread(
        subprocess.run, [args.wrk, "--version"], capture_output=True, text=True, check=False
    )
    wrk_line = (wrk_version.stdout or wrk_version.stderr).splitlines()[0:1]

    def git(*git_args: str) -> str:
        return subprocess.run(["git", *git_args], cwd=REPO, capture_output=True, text=True, check=False).stdout.strip()

    dirty = " (uncommitted changes)" if git("status", "--porcelain", "--untracked-files=no") else ""
    load = os.getloadavg()
    cache_seconds = SecuritySettings(secret_key=BENCH_SECRET).auth_cache_seconds
    lines: list[str] = []
    lines.append(
        f"- machine: {os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), "
        f"{platform.system()} {platform.release()}; wrk, the servers and PostgreSQL share these cores"
    )
    lines.append(
        f"- PostgreSQL {server_version} on loopback ({', '.join(f'{r[0]}={r[1]}' for r in settings)}); "
        f"Python {platform.python_version()}, Litestar {version('litestar')}, "
        f"uvicorn {uvicorn.__version__} (uvloop, httptools), SQLAlchemy {sqlalchemy.__version__}, "
        f"asyncpg {asyncpg.__version__}; {wrk_line[0] if wrk_line else 'wrk'}"
    )
    lines.append(
        f"- wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s --latency after a {args.warmup:g} s "
        f"warm-up before each; rounds of GET + ceiling runs: {args.repeat}, of POST runs: {args.post_repeat}; "
        "billplane and the ceiling app run side by side, each round in the order ceiling B, GET 1 tenant, "
        "GET all tenants, ceiling A, POSTs"
    )
    lines.append(
        f"- data: {fixture.tenants:,} tenants, {fixture.customers:,} customers (tenant 0: "
        f"{len(fixture.single_ids)}; others {args.min_customers}-{args.max_customers}), database {size} "
        f"after the run; setup {fixture.setup_seconds:.0f} s; whole run {seconds:.0f} s"
    )
    pool = DatabaseSettings(url="postgresql://unused")
    lines.append(
        f"- billplane settings: defaults (pool {pool.pool_size} + {pool.max_overflow} overflow per worker, key cache"
        f" {LISTENING_TTL_SECONDS:g} s while listening for key changes, else {cache_seconds:g} s); "
        f"code: commit {git('rev-parse', '--short', 'HEAD') or 'unknown'}{dirty}"
    )
    lines.append(f"- load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    return lines


# -- main ------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="HTTP throughput of billplane's tenant API against its ceilings.")
    parser.add_argument("--database-url", default=DEFAULT_URL, help="admin URL on a loopback server")
    parser.add_argument("--tenants", type=int, default=1000, help="tenants created (the wide spread)")
    parser.add_argument("--single-customers", type=int, default=100, help="customers of tenant 0")
    parser.add_argument("--min-customers", type=int, default=20, help="fewest customers of the other tenants")
    parser.add_argument("--max-customers", type=int, default=100, help="most customers of the other tenants")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of each measured wrk run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of wrk warm-up before each")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of the GET and ceiling runs (median)")
    parser.add_argument("--post-repeat", type=int, default=1, help="rounds of the POST runs")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--workers", default="1,2", help="server worker counts, comma-separated")
    parser.add_argument("--no-idempotency", action="store_true", help="skip the Idempotency-Key POST runs")
    parser.add_argument("--seed", type=int, default=20261125, help="seed of the customer counts")
    parser.add_argument("--time-limit", type=float, default=900.0, help="seconds before the run is aborted")
    parser.add_argument("--wrk", default=shutil.which("wrk") or "wrk", help="the wrk binary")
    parser.add_argument("--quick", action="store_true", help="smoke run: 30 tenants, 2 s runs, 1 worker count")
    parser.add_argument("--verbose", action="store_true", help="print wrk's own output")
    args = parser.parse_args(argv)
    if args.quick:
        args.tenants, args.duration, args.warmup, args.repeat, args.post_repeat = 30, 2.0, 1.0, 1, 1
    args.worker_counts = [int(part) for part in args.workers.split(",") if part.strip()]
    if args.quick and "--workers" not in (argv if argv is not None else sys.argv):
        args.worker_counts = [1]
    if min(args.tenants, args.repeat, args.post_repeat) < 1 or args.duration <= 0 or not args.worker_counts:
        parser.error("--tenants, --repeat, --post-repeat and --duration must be positive and --workers non-empty")
    if not 1 <= args.min_customers <= args.max_customers or args.single_customers < 1:
        parser.error("need 1 <= --min-customers <= --max-customers and --single-customers >= 1")
    if shutil.which(args.wrk) is None:
        parser.error(f"wrk not found ({args.wrk}): apt-get install -y wrk")
    return args


async def benchmark(args: argparse.Namespace, url: URL, scratch: Path) -> None:
    started = time.perf_counter()
    fixture = await build_fixture(args, url, scratch)
    log("counting PostgreSQL round trips per request")
    round_trips = await count_round_trips(url, fixture)
    env = server_environment(url)
    env["BENCH_CEILING_SCHEMA"] = fixture.single_schema
    chosen = scenarios(idempotency=not args.no_idempotency)
    measurements: list[Measurement] = []
    monitor = await asyncpg.connect(asyncpg_dsn(url))
    context = Context(args, env, scratch, fixture, monitor, url.database or "")
    try:
        for workers in args.worker_counts:
            measurements += await run_worker_count(context, workers, chosen)
    finally:
        await monitor.close()
    command = shlex.join(["uv", "run", "python", "bench/api_throughput.py", *sys.argv[1:]])
    print("## Throughput (wrk on loopback)\n")
    print(results_table(measurements, fixture))
    print(
        "\nreq/s, p50 and p99: median over the runs. Per request, pooled over the runs: CPU time of the server's"
        " processes, of the measured server's PostgreSQL backends (live at the end of the run) and of wrk."
        " 'machine CPU busy': median share of both cores' time in use during the run (/proc/stat: everything,"
        " PostgreSQL included). PostgreSQL transactions committed and rolled back: pg_stat_database, about +-10 %"
        " (PostgreSQL 15 backends report their counts up to 1 s late under load, the rest after 10 s idle)."
        " 'PG connections opened': new connections to the database during the measured runs (pool churn)."
    )
    print("\n## Targets\n")
    print(targets_table(measurements, fixture, args.worker_counts))
    print("\n## PostgreSQL round trips per request (in-process, warm, through a counting proxy)\n")
    print(round_trip_table(round_trips))
    print("\nWhat the client sends in each round trip of one warm request:\n")
    print(trace_listing(round_trips))
    print("\n## Environment\n")
    print("\n".join(await environment(url, fixture, args, time.perf_counter() - started)))
    print(f"- command: `{command}`")
    errors = sum(m.errors for m in measurements)
    if errors:
        print(f"\n**{errors} errors or non-2xx answers during the measured runs: see the errors column.**")
    summary = statistics.fmean(m.rps for m in measurements) if measurements else 0.0
    log(f"done: {len(measurements)} measured runs, mean {summary:,.0f} req/s")


async def main(args: argparse.Namespace) -> None:
    # SIGTERM cancels the run like Ctrl-C does, so the finally blocks still stop servers and drop the database.
    task = asyncio.current_task()
    if task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    async with throwaway_database(make_url(args.database_url), "bench_api") as url:
        with tempfile.TemporaryDirectory(prefix="bench_api_") as scratch:
            async with asyncio.timeout(args.time_limit):
                await benchmark(args, url, Path(scratch))


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
