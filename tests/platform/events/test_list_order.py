"""GET /v1/events never lets a client that follows its cursors miss an event, whatever order the
writers commit in."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from billplane.api.pagination import encode_cursor
from billplane.events.emit import emit
from billplane.events.models import Event
from billplane.runtime import Runtime
from tests.conftest import CreatedTenant
from tests.platform.events.helpers import emit_event
from tests.platform.listable import events_listable

Client = AsyncTestClient[Litestar]


async def tail(client: Client, tenant: CreatedTenant, cursor: str | None, seen: list[int]) -> str | None:
    """One poll by a client that tails the list one event per page: it follows ``next_cursor`` to
    the last page and adds the events it had not seen; the cursor to poll from next time."""
    while True:
        params: dict[str, Any] = {"limit": 1} | ({} if cursor is None else {"cursor": cursor})
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


async def test_a_cursor_naming_no_event_is_refused(client: Client, tenant: CreatedTenant, runtime: Runtime) -> None:
    await emit_event(runtime, tenant, "customer.created", 1)
    one_object: dict[str, str | int] = {"object_type": "customer", "object_id": 1}
    for params in ({}, one_object):
        gone = await client.get("/v1/events", params={"cursor": encode_cursor(10**6), **params}, headers=tenant.headers)
        assert gone.status_code == 422, gone.text
        assert [(error["field"], error["source"]) for error in gone.json()["errors"]] == [("cursor", "query")]
