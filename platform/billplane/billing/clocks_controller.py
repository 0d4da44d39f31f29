"""/v1/test-clocks: simulated time for test-mode customers."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.api.auth import principal_of
from billplane.api.pagination import DEFAULT_LIMIT, Cursor, Limit, Page, decode_cursor
from billplane.billing.clocks_schemas import TestClock, TestClockAdvanceBody, TestClockAttachBody, TestClockCreateBody
from billplane.billing.clocks_service import ClockService


async def provide_clock_service(
    request: Request[Any, Any, Any], tenant_session: NamedDependency[AsyncSession]
) -> ClockService:
    return ClockService(tenant_session, principal_of(request).tenant_id)


class TestClockController(Controller):
    path = "/v1/test-clocks"
    tags = ["test clocks"]
    security = [{"apiKey": []}]
    dependencies = {"clocks": Provide(provide_clock_service)}

    @post("/", operation_id="createTestClock", status_code=201)
    async def create_test_clock(self, data: TestClockCreateBody, clocks: NamedDependency[ClockService]) -> TestClock:
        """Create a clock frozen at `frozen_time` (with a time zone offset). Attach customers before they
        subscribe; their subscriptions, trials, invoices and dunning then follow the clock, not real time."""
        return TestClock.of(await clocks.create(data))

    @get("/{clock_id:int}", operation_id="getTestClock")
    async def get_test_clock(self, clock_id: FromPath[int], clocks: NamedDependency[ClockService]) -> TestClock:
        """One clock; 404 if it does not exist or belongs to another tenant."""
        return TestClock.of(*await clocks.get(clock_id))

    @get("/", operation_id="listTestClocks")
    async def list_test_clocks(
        self, *, clocks: NamedDependency[ClockService], limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
    ) -> Page[TestClock]:
        """List the tenant's clocks, oldest first."""
        rows, next_cursor = await clocks.page(after=decode_cursor(cursor), limit=limit)
        return Page(data=[TestClock.of(row) for row in rows], next_cursor=next_cursor)

    @delete("/{clock_id:int}", operation_id="deleteTestClock", status_code=204)
    async def delete_test_clock(self, clock_id: FromPath[int], clocks: NamedDependency[ClockService]) -> None:
        """Delete a clock: 409 while it is advancing or while live customers are attached to it."""
        await clocks.delete(clock_id)

    @post("/{clock_id:int}/customers", operation_id="attachTestClockCustomer", status_code=200)
    async def attach_test_clock_customer(
        self, clock_id: FromPath[int], data: TestClockAttachBody, clocks: NamedDependency[ClockService]
    ) -> TestClock:
        """Put a customer on the clock, for good. 422 for a customer with subscriptions or invoices already, or
        one that would be charged through a live-mode provider account; 409 if it is on another clock."""
        return TestClock.of(await clocks.attach(clock_id, data))

    @post("/{clock_id:int}/advance", operation_id="advanceTestClock", status_code=202)
    async def advance_test_clock(
        self, clock_id: FromPath[int], data: TestClockAdvanceBody, clocks: NamedDependency[ClockService]
    ) -> TestClock:
        """Move the clock to `to` (after `frozen_time`, at most two years on), asynchronously (202, `advancing`).

        The worker moves it boundary by boundary (period ends, trial ends, dunning retries) and runs at
        each what would have happened then, for this clock's customers only: billing, charges, retries,
        final actions, events and webhooks. The clock is `ready` again at `to`. 409 while it is advancing.
        """
        clock, to = await clocks.advance(clock_id, data)
        return TestClock.of(clock, to)
