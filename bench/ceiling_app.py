"""Ceiling app for bench/api_throughput.py: the same customer lookup with nothing around it.

A bare Litestar app with two routes that look one customer up by primary key in ONE schema's
``customers`` table (a billplane tenant schema): no authentication, no tenancy, no Idempotency-Key,
no problem-details handlers, no response capture.

- ``GET /raw/{id}``: raw asyncpg, one pool per worker (asyncpg's own statement cache on), one
  ``fetchrow``: the ceiling for any Python ASGI app on this server and database.
- ``GET /sa/{id}``: plain SQLAlchemy 2 async ORM, ``session.get(Customer, id)`` inside
  ``async with session.begin()``, the asyncpg dialect's default statement cache (100), no
  ``pool_pre_ping``: the ceiling for billplane's own stack (Litestar + SQLAlchemy ORM).

Both answer the same JSON shape as billplane's ``GET /v1/customers/{id}`` (msgspec-encoded). The schema
is the connections' ``search_path``, set once per connection at connect time, so the SQL is not
schema-qualified and nothing is set per request. Each route has 10 connections per worker, all kept
open: as many as billplane's defaults allow (pool 5 + overflow 5), without pool churn.

Configuration is read from the environment, so uvicorn's worker processes (``--workers N``) can
build the app from the factory: ``BENCH_CEILING_DATABASE_URL`` (a SQLAlchemy asyncpg URL) and
``BENCH_CEILING_SCHEMA`` (the schema holding ``customers``).

Serve it exactly as ``billplane run`` serves billplane (uvicorn, uvloop, httptools, no access log):

    BENCH_CEILING_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/<db> \\
    BENCH_CEILING_SCHEMA=tenant_<slug> uv run python bench/ceiling_app.py --workers 2 --port 8100
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import uvicorn
from litestar import Litestar, get
from litestar.datastructures import State
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

# billplane's own mapping of the tenant table: the same columns and types (JSONB metadata,
# timestamptz) as the endpoint being compared; the model is plain SQLAlchemy declarative.
from billplane.customers.models import Customer

URL_ENV = "BENCH_CEILING_DATABASE_URL"
SCHEMA_ENV = "BENCH_CEILING_SCHEMA"
# As many connections as billplane's defaults allow (pool_size=5 + max_overflow=5), but all of them
# kept open: a ceiling should not pay for pool churn (overflow connections closed on return).
CONNECTIONS = 10
_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
RAW_QUERY = (
    "SELECT id, email, name, external_id, metadata, created_at, updated_at FROM customers WHERE id = $1"
    " AND deleted_at IS NULL"
)


class CustomerOut(msgspec.Struct, kw_only=True):
    """The shape billplane answers for a customer."""

    id: int
    email: str | None
    name: str | None
    external_id: str | None
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime


class Resources:
    """Per-worker connections: created on startup in the worker's own event loop."""

    def __init__(self, url: str, schema: str) -> None:
        if not _SCHEMA_RE.fullmatch(schema):
            raise ValueError(f"not a schema name: {schema!r}")
        self.url = make_url(url).set(drivername="postgresql+asyncpg")
        self.schema = schema
        self.pool: Any = None  # asyncpg.Pool (asyncpg ships no type information)
        self.engine: AsyncEngine | None = None
        self.sessions: async_sessionmaker[AsyncSession] | None = None

    async def start(self) -> None:
        server_settings = {"search_path": self.schema, "application_name": "bench_ceiling"}
        dsn = self.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.pool = await asyncpg.create_pool(
            dsn,
            min_size=CONNECTIONS,
            max_size=CONNECTIONS,
            server_settings=server_settings,
            init=_json_codecs,
        )
        self.engine = create_async_engine(
            self.url.render_as_string(hide_password=False),
            pool_size=CONNECTIONS,
            max_overflow=0,
            connect_args={"server_settings": server_settings},
        )
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    async def stop(self) -> None:
        if self.pool is not None:
            await self.pool.close()
        if self.engine is not None:
            await self.engine.dispose()


async def _json_codecs(connection: Any) -> None:
    # Decode jsonb to Python objects, as SQLAlchemy's asyncpg dialect does for billplane.
    await connection.set_type_codec(
        "jsonb", encoder=msgspec.json.encode, decoder=msgspec.json.decode, schema="pg_catalog", format="text"
    )


def _resources(state: State) -> Resources:
    resources: Resources = state.resources
    return resources


@get("/raw/{customer_id:int}")
async def raw_customer(state: State, customer_id: FromPath[int]) -> CustomerOut:
    """One customer by primary key through raw asyncpg."""
    async with _resources(state).pool.acquire() as connection:
        row = await connection.fetchrow(RAW_QUERY, customer_id)
    if row is None:
        raise NotFoundException(f"no customer {customer_id}")
    return CustomerOut(
        id=row["id"],
        email=row["email"],
        name=row["name"],
        external_id=row["external_id"],
        metadata=row["metadata"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


@get("/sa/{customer_id:int}")
async def sa_customer(state: State, customer_id: FromPath[int]) -> CustomerOut:
    """One customer by primary key through the SQLAlchemy 2 async ORM."""
    sessions = _resources(state).sessions
    if sessions is None:
        raise RuntimeError("the app has not started")
    async with sessions() as session, session.begin():
        customer = await session.get(Customer, customer_id)
    if customer is None or customer.deleted_at is not None:
        raise NotFoundException(f"no customer {customer_id}")
    return CustomerOut(
        id=customer.id,
        email=customer.email,
        name=customer.name,
        external_id=customer.external_id,
        metadata=customer.metadata_,
        created_at=customer.created_at,
        updated_at=customer.updated_at,
    )


def build_app(url: str, schema: str) -> Litestar:
    resources = Resources(url, schema)
    return Litestar(
        route_handlers=[raw_customer, sa_customer],
        state=State({"resources": resources}),
        on_startup=[resources.start],
        on_shutdown=[resources.stop],
        openapi_config=None,
    )


def create_app() -> Litestar:
    """The uvicorn factory: configuration from the environment (see the module docstring)."""
    url = os.environ.get(URL_ENV)
    schema = os.environ.get(SCHEMA_ENV)
    if not url or not schema:
        raise RuntimeError(f"{URL_ENV} and {SCHEMA_ENV} must be set")
    return build_app(url, schema)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the ceiling app as `billplane run` serves billplane.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    uvicorn.run(
        "ceiling_app:create_app",
        factory=True,
        app_dir=str(Path(__file__).resolve().parent),
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
    )


if __name__ == "__main__":
    main()
