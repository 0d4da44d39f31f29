"""POST /v1/customers with and without a default provider account, in one run.

Issue 4's speed criterion: a create with a provider account connected must cost what one without
costs, because provider calls never run in the request (only an outbox row is written, and its
job is deferred after the response by a background task). In-process ASGI client (httpx), N
concurrent clients, rounds interleaved between the two tenants; no worker runs, so the
measurement is the request path alone. Creates and drops its own database on the loopback server.

    uv run python bench/sync_overhead.py --seconds 5 --rounds 3 --concurrency 8
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
import statistics
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import cast

import asyncpg
import httpx
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.app import create_app
from billplane.db.paths import control_scripts
from billplane.plugins.contract import ProviderAdapter
from billplane.provider_accounts.resolved import ResolvedAccount
from billplane.runtime import Runtime
from billplane.settings import DatabaseSettings, SecuritySettings, Settings
from billplane_tenants import Database
from billplane_tenants.migrations import upgrade_control

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


async def admin_execute(admin_url: URL, statement: str) -> None:
    connection = await asyncpg.connect(admin_url.set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@asynccontextmanager
async def throwaway_database(admin_url: URL) -> AsyncIterator[str]:
    """A new database with the control schema at head, dropped on the way out whatever happens."""
    if admin_url.host not in LOOPBACK_HOSTS:
        raise SystemExit(f"refusing a non-loopback host: {admin_url.host!r}")
    name = f"bench_sync_{secrets.token_hex(4)}"
    url = admin_url.set(drivername="postgresql+asyncpg", database=name).render_as_string(hide_password=False)
    await admin_execute(admin_url, f'CREATE DATABASE "{name}"')
    try:
        database = Database(url, pool_size=1, max_overflow=0)
        try:
            await upgrade_control(database, str(control_scripts()))
        finally:
            await database.dispose()
        yield url
    finally:
        await admin_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        print(f"dropped {name}")


def bench_settings(url: str) -> Settings:
    return Settings(
        database=DatabaseSettings(url=url),
        security=SecuritySettings(secret_key="bench-secret-" + "s" * 32, admin_key="bench-admin-" + "a" * 32),
    )


class OneAccount:
    """An AccountSource with one default account for one tenant; its adapter is never called here."""

    def __init__(self, tenant_id: int, schema: str) -> None:
        self.resolved = ResolvedAccount(
            id=1,
            tenant_id=tenant_id,
            tenant_schema=schema,
            provider="bench",
            mode="test",
            is_default=True,
            adapter=cast("ProviderAdapter", object()),
        )

    async def account(self, account_id: int) -> ResolvedAccount | None:
        return self.resolved if account_id == 1 else None

    async def default_accounts(self, tenant_id: int) -> list[ResolvedAccount]:
        return [self.resolved] if tenant_id == self.resolved.tenant_id else []

    async def default_account_ids(self, _session: AsyncSession, tenant_id: int) -> tuple[int, ...]:
        return tuple(account.id for account in await self.default_accounts(tenant_id))


def _ignore(_refs: Iterable[object]) -> None:
    return None


async def hammer(client: httpx.AsyncClient, key: str, seconds: float, concurrency: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def one_client() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            response = await client.post("/v1/customers", json={"name": "Bench"}, headers={"Authorization": key})
            if response.status_code != 201:
                raise SystemExit(f"unexpected {response.status_code}: {response.text}")
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(concurrency)))
    return len(latencies) / (time.perf_counter() - started), latencies


async def main(args: argparse.Namespace) -> None:
    logging.disable(logging.INFO)  # a log line per request or batch would measure the logger
    async with throwaway_database(make_url(args.admin_url)) as url:
        app = create_app(bench_settings(url))
        runtime: Runtime = app.state.runtime
        admin = {"Authorization": f"Bearer {runtime.settings.security.admin_key}"}
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            keys = {}
            for slug in ("plain", "synced"):
                created = (
                    await client.post("/v1/admin/tenants", json={"slug": slug, "name": slug}, headers=admin)
                ).json()
                keys[slug] = (created["tenant"]["id"], f"Bearer {created['api_key']['key']}")
            runtime.accounts = OneAccount(keys["synced"][0], "tenant_synced")
            if args.no_defer:  # isolates the outbox insert from the deferral of its job
                runtime.jobs.ring = _ignore  # type: ignore[method-assign, assignment]
            results: dict[str, list[tuple[float, list[float]]]] = {"plain": [], "synced": []}
            for slug in ("plain", "synced"):  # warm-up
                await hammer(client, keys[slug][1], 1.0, args.concurrency)
            for _ in range(args.rounds):
                for slug in ("plain", "synced"):
                    results[slug].append(await hammer(client, keys[slug][1], args.seconds, args.concurrency))
            await runtime.jobs.flush()
        await runtime.close()
        print(f"{'tenant':<34} {'req/s (median)':>14} {'p50 ms':>7} {'p99 ms':>7}  runs")
        labels = {"plain": "no provider account", "synced": "one default provider account"}
        for slug, runs in results.items():
            rates = [rate for rate, _ in runs]
            latencies = sorted(latency for _, values in runs for latency in values)
            p50 = latencies[len(latencies) // 2] * 1000
            p99 = latencies[int(len(latencies) * 0.99)] * 1000
            shown = ", ".join(f"{rate:,.0f}" for rate in rates)
            print(f"{labels[slug]:<34} {statistics.median(rates):>14,.0f} {p50:>7.2f} {p99:>7.2f}  {shown}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admin-url", default=ADMIN_URL)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--no-defer", action="store_true", help="write outbox rows but defer no jobs")
    asyncio.run(main(parser.parse_args()))
