"""What the HTTP benchmarks share: logging, a throwaway database, free ports, process CPU.

Imported by the scripts in this folder (run as `uv run python bench/<script>.py`, so this folder
is on `sys.path`).
"""

from __future__ import annotations

import os
import resource
import secrets
import socket
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
from sqlalchemy.engine import URL

from billplane.db.paths import control_scripts
from billplane_tenants import Database
from billplane_tenants.migrations import upgrade_control

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# The HTTP benchmarks drive one tenant far past any sensible per-tenant rate limit. With this the
# limiter still runs on every request (its cost stays in the numbers) but never refuses one.
UNTHROTTLED_ENVIRONMENT = {"BILLPLANE_RATE_LIMIT_PER_SECOND": "1000000", "BILLPLANE_RATE_LIMIT_BURST": "1000000"}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def asyncpg_dsn(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def url_text(url: URL) -> str:
    return url.render_as_string(hide_password=False)


async def admin_execute(admin_url: URL, statement: str) -> None:
    connection = await asyncpg.connect(asyncpg_dsn(admin_url))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@asynccontextmanager
async def throwaway_database(admin_url: URL, prefix: str) -> AsyncIterator[URL]:
    """A new database ``<prefix>_<random>`` with the control schema at head, dropped on the way out
    whatever happens."""
    if admin_url.host not in LOOPBACK_HOSTS:
        raise SystemExit(f"refusing a non-loopback host: {admin_url.host!r}")
    name = f"{prefix}_{secrets.token_hex(4)}"
    url = admin_url.set(drivername="postgresql+asyncpg", database=name)
    log(f"creating database {name}")
    await admin_execute(admin_url, f'CREATE DATABASE "{name}"')
    try:
        database = Database(url_text(url), pool_size=1, max_overflow=0)
        try:
            await upgrade_control(database, str(control_scripts()))
        finally:
            await database.dispose()
        yield url
    finally:
        log(f"dropping {name}")
        # FORCE: a server that did not stop in time may still hold connections to it.
        await admin_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()  # fields from "state" on (the name may hold spaces)


def process_cpu(pid: int) -> float:
    """User plus system CPU seconds of one process so far (0 once it is gone)."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def group_pids(group: int) -> list[int]:
    """The live processes of one process group (a server and its workers)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None and int(fields[2]) == group:  # pgrp
                pids.append(int(entry.name))
    return pids


def children_cpu() -> float:
    """CPU seconds of this process's waited-for children (wrk)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
