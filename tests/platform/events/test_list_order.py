"""GET /v1/events never lets a client that follows its cursors miss an event, whatever order the
writers commit in."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from billplane.api.pagination import encode_cursor
from billplane.events.emit import emit
from billplane.events.models import Event
from billplane.runtime import Runtime
from billplane.sync.listener import asyncpg_dsn
from tests.conftest import CreatedTenant
from tests.platform.events.helpers import emit_event
from tests.platform.listable import events_listable

Client = AsyncTestClient[Litestar]


async def tail(
    client: Client, tenant: CreatedTenant, cursor: str | None, seen: list[int], *, only: dict[str, Any] | None = None
) -> str | None:
    """One poll by a client that tails the list one event per page: it follows ``next_cursor`` to
    the last page and adds the events it had not seen; the cursor to poll from next time.
    ``only``: the list's filters."""
    while True:
        params: dict[str, Any] = {"limit": 1, **(only or {})} | ({} if cursor is None else {"cursor": cursor})
        response = await client.get("/v1/events", params=params, headers=tenant.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        seen += [event["id"] for event in page["data"] if event["id"] not in seen]
        if page["next_cursor"] is None:
            return cursor
        cursor = page["next_cursor"]


async def ids(runtime: Runtime, tenant: CreatedTenant) -> list[int]:
    async with runtime.database.tenant_session(tenant.schema) as session:
        return list(await session.scalars(select(Event.id).order_by(Event.id)))


async def test_an_event_whose_transaction_commits_late_is_not_skipped(
    client: Client, tenant: CreatedTenant, runtime: Runtime
) -> None:
    seen: list[int] = []
    await emit_event(runtime, tenant, "customer.created", 1)
    async with runtime.database.tenant_session(tenant.schema) as late:
        # Takes its id now and commits after two later events.
        await emit(late, "customer.updated", "customer", 1, {"id": 1})
        await emit_event(runtime, tenant, "customer.created", 2)
        await emit_event(runtime, tenant, "customer.created", 3)
        cursor = await tail(client, tenant, None, seen)
        before_it_committed = list(seen)
    await events_listable(runtime.settings.database.url)
    await tail(client, tenant, cursor, seen)
    assert seen == await ids(runtime, tenant)
    assert len(seen) == 4
    # The open transaction could still have committed an event before the two committed ones: they waited.
    assert len(before_it_committed) <= 1


async def test_an_event_with_a_lower_id_from_a_later_transaction_is_listed_after(
    client: Client, tenant: CreatedTenant, runtime: Runtime
) -> None:
    seen: list[int] = []
    async with (
        runtime.database.tenant_session(tenant.schema) as first,
        runtime.database.tenant_session(tenant.schema) as second,
    ):
        for older in (first, second):  # their transaction ids, before the third's
            await older.execute(select(func.pg_current_xact_id()))
        async with runtime.database.tenant_session(tenant.schema) as third:
            await emit(third, "customer.created", "customer", 3, {"id": 3})  # the lowest event id
            for older in (first, second):
                await emit(older, "customer.created", "customer", 1, {"id": 1})
                await older.commit()
            cursor = await tail(client, tenant, None, seen)
    await events_listable(runtime.settings.database.url)
    await tail(client, tenant, cursor, seen)
    lowest, *others = await ids(runtime, tenant)
    assert seen == [*others, lowest]


async def test_one_objects_events_list_in_the_order_of_its_changes(
    client: Client, tenant: CreatedTenant, runtime: Runtime
) -> None:
    # The webhook applier's shape: a transaction takes its id locking rows, waits for another
    # that changes the same object, then records its own, later change.
    async with runtime.database.tenant_session(tenant.schema) as waited:
        await waited.execute(select(func.pg_current_xact_id()))
        await emit_event(runtime, tenant, "customer.updated", 7, name="first")
        await emit(waited, "customer.updated", "customer", 7, {"id": 7, "name": "second"})
    await events_listable(runtime.settings.database.url)
    first, second = await ids(runtime, tenant)

    history = await client.get("/v1/events?object_type=customer&object_id=7", headers=tenant.headers)
    assert [event["id"] for event in history.json()["data"]] == [first, second]
    assert history.json()["data"][-1]["data"]["name"] == "second"
    # Across objects the list follows the writing transactions: the waiting one began first.
    every = await client.get("/v1/events", headers=tenant.headers)
    assert [event["id"] for event in every.json()["data"]] == [second, first]


async def ended_past(database_url: str, xid: int, *, within: float = 30.0) -> None:
    """Wait until every transaction with an id up to ``xid`` has ended, in the whole cluster: the
    suite's other workers may hold one open for a while."""
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while int(await connection.fetchval("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")) <= xid:
            assert loop.time() < deadline, f"a transaction up to {xid} is still open after {within} s"
            await asyncio.sleep(0.01)
    finally:
        await connection.close()


async def test_one_objects_list_shows_an_earlier_change_committed_after_a_running_transaction_began(
    client: Client, tenant: CreatedTenant, runtime: Runtime
) -> None:
    # W1 and W2 take their transaction ids, then B (any transaction of the server), then C writes
    # the object's first change and commits, then W1 and W2 the next two. While B runs, the
    # snapshot's xmin sits between the Ws' ids and C's: a list filtered by xmin would show the
    # second and third changes and hide the first, and the client's cursor, past the second once
    # it has read the third, would never come back to the first.
    only = {"object_type": "customer", "object_id": 7}
    seen: list[int] = []
    url = runtime.settings.database.url
    running = await asyncpg.connect(asyncpg_dsn(url))
    try:
        async with (
            runtime.database.tenant_session(tenant.schema) as first,
            runtime.database.tenant_session(tenant.schema) as second,
        ):
            for waited in (first, second):
                waited_id = int(str(await waited.scalar(select(func.pg_current_xact_id()))))
            blocker = running.transaction()
            await blocker.start()
            await running.fetchval("SELECT pg_current_xact_id()")
            await emit_event(runtime, tenant, "customer.updated", 7, name="first")
            for name, waited in (("second", first), ("third", second)):
                await emit(waited, "customer.updated", "customer", 7, {"id": 7, "name": name})
                await waited.commit()
        await ended_past(url, waited_id)  # only B is left before C: the order the scenario needs
        cursor = await tail(client, tenant, None, seen, only=only)
        while_running = list(seen)
        await blocker.rollback()
    finally:
        await running.close()  # never leave B open: it would hold back other tests' lists
    await events_listable(url)
    await tail(client, tenant, cursor, seen, only=only)
    assert seen == await ids(runtime, tenant)
    assert while_running == seen  # one object's events are not held back by unrelated transactions


async def test_a_cursor_naming_no_event_is_refused(client: Client, tenant: CreatedTenant, runtime: Runtime) -> None:
    await emit_event(runtime, tenant, "customer.created", 1)
    one_object: dict[str, str | int] = {"object_type": "customer", "object_id": 1}
    for params in ({}, one_object):
        gone = await client.get("/v1/events", params={"cursor": encode_cursor(10**6), **params}, headers=tenant.headers)
        assert gone.status_code == 422, gone.text
        assert [(error["field"], error["source"]) for error in gone.json()["errors"]] == [("cursor", "query")]
