"""Request-scoped database sessions: the transaction belongs to the request.

Litestar closes these generators before the response is sent, throwing in any exception the
handler raised, so the request commits once on success and rolls back on any error. A GET route
marked ``opt=READ_ONE`` runs its one SELECT outside a transaction instead (nothing to commit). They also
apply Idempotency-Key to POSTs (billplane.idempotency.store), in that same transaction, and refuse
JSON floats, NUL characters, unknown query parameters and unwanted or missing bodies
(billplane.api.strict_json) once the caller is authenticated. Every tenant route authenticates
through one of these or ``billplane.api.auth.provide_principal``, which refuse them alike. A route
marked ``opt=HOLDS_TENANT`` (it writes control rows naming the tenant) holds the tenant's row
before anything else (``billplane.tenancy.holding``).

Tenant requests take a pooled connection in the order they asked: ``connection_gate`` (the app's
``asyncio.Semaphore``, first come first served, one smaller than the pool: ``app.gate_size``)
admits them before the pool does. The pool's own queue lets a newcomer take a freed connection
ahead of tasks already waiting, which sent them to the back of the line (p99 in the hundreds of ms
under load; docs/performance.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

from litestar import Request
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.api.auth import authenticate, runtime_of
from billplane.api.responses import CAPTURE_STATE_KEY
from billplane.api.strict_json import refuse_bad_input, refuse_bad_parameters, refuse_body_mismatch
from billplane.idempotency import store
from billplane.idempotency.models import AdminIdempotencyKey, IdempotencyKey
from billplane.tenancy.holding import TENANT_HOLD, hold_tenant
from billplane_tenants.database import RowReader

ADMIN_SCOPE = "admin"
# Route option for a GET whose handler runs exactly one SELECT: it gets a reader session (no
# transaction; ``Database.reader``), and a second statement fails loudly instead of silently
# reading two snapshots.
SINGLE_READ = "single_read"
READ_ONE: dict[str, Any] = {SINGLE_READ: True}


async def _store_first_response(
    request: Request[Any, Any, Any],
    session: AsyncSession,
    model: type[store.KeyModel],
    pending: store.PendingKey | None,
) -> None:
    if pending is None:
        return
    captured = request.state.get(CAPTURE_STATE_KEY)
    if captured is None:
        raise RuntimeError("the response was not captured; is CapturingResponse the app's response class?")
    await store.finish(session, model, pending, captured, runtime_of(request).sealer)


async def provide_control_session(request: Request[Any, Any, Any]) -> AsyncGenerator[AsyncSession, None]:
    await refuse_bad_input(request)
    async with runtime_of(request).database.control_session() as session:
        pending = await store.begin(session, AdminIdempotencyKey, ADMIN_SCOPE, request, runtime_of(request).sealer)
        await refuse_body_mismatch(request)
        yield session
        await _store_first_response(request, session, AdminIdempotencyKey, pending)


async def provide_tenant_session(request: Request[Any, Any, Any]) -> AsyncGenerator[AsyncSession, None]:
    # Authenticates by itself rather than through the `principal` dependency: one dependency
    # fewer to resolve on every tenant request (a measurable share of a GET).
    principal = await authenticate(request)
    database = runtime_of(request).database
    gate: asyncio.Semaphore = request.app.state.connection_gate
    if request.route_handler.opt.get(SINGLE_READ) and request.method == "GET":
        refuse_bad_parameters(request)
        async with gate, database.reader(principal.schema_name) as reader:
            yield reader
        return
    await refuse_bad_input(request)
    async with gate, database.tenant_session(principal.schema_name) as session:
        if request.route_handler.opt.get(TENANT_HOLD):  # before the Idempotency-Key's table
            await hold_tenant(session, principal)
        pending = await store.begin(session, IdempotencyKey, principal.schema_name, request, runtime_of(request).sealer)
        await refuse_body_mismatch(request)
        yield session
        await _store_first_response(request, session, IdempotencyKey, pending)


async def provide_tenant_rows(request: Request[Any, Any, Any]) -> RowReader:
    """The `tenant_rows` dependency: single-statement reads in the caller's tenant schema, no session.

    For GETs that run one ``TenantSelect`` (``billplane_tenants.database.RowReader``). A plain
    function, not a generator: the connection is taken and given back inside each statement, behind
    the same first-come, first-served gate as sessions. Refuses what no GET may carry, as sessions do.
    """
    principal = await authenticate(request)
    refuse_bad_parameters(request)
    return runtime_of(request).database.rows(principal.schema_name, request.app.state.connection_gate)
