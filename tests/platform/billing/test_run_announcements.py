"""What a billing run tells the workers: its charges (outbox channel) and webhook deliveries
(webhooks channel), sent after each tenant's commit, a few tenants at a time and at the end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import anyio
import asyncpg
import pytest
from billplane_sandbox.payment_methods import SUCCEEDS
from sqlalchemy import text

from billplane.billing import announcing
from billplane.billing.announcing import Announcer
from billplane.billing.run import BillingRun
from billplane.events.emit import WEBHOOKS_CHANNEL
from billplane.runtime import Runtime
from billplane.sync.channel import OUTBOX_CHANNEL, notify_payload
from billplane.sync.listener import asyncpg_dsn
from tests.conftest import CreatedTenant, create_tenant
from tests.platform.billing.test_billing_run import DAY, Client, subscribe
from tests.platform.billing.test_run_charges import daily_plan
from tests.platform.invoices.helpers import connect_sandbox, customer, payment_method

SENTINEL = "test-sentinel"


class Heard:
    """(channel, payload) of every notification on both channels, with what the tenant's schema
    showed when it arrived: its charges' outbox rows and its webhook deliveries."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        # In the order they arrived, each looking at the schema as it was on arrival.
        self.queue: asyncio.Queue[asyncio.Task[tuple[str, str, tuple[int, int]]]] = asyncio.Queue()
        self.schema = ""

    def on(self, _connection: object, _pid: int, channel: str, payload: str) -> None:
        self.queue.put_nowait(asyncio.ensure_future(self._look(channel, payload)))

    async def _look(self, channel: str, payload: str) -> tuple[str, str, tuple[int, int]]:
        seen = (0, 0)
        if self.schema and payload != SENTINEL:
            connection = await asyncpg.connect(self.dsn)
            try:
                outbox = await connection.fetchval(
                    f"SELECT count(*) FROM \"{self.schema}\".outbox WHERE kind = 'payment.charge'"
                )
                deliveries = await connection.fetchval(f'SELECT count(*) FROM "{self.schema}".webhook_deliveries')
                seen = (outbox, deliveries)
            finally:
                await connection.close()
        return channel, payload, seen

    async def until_now(self) -> list[tuple[str, str, tuple[int, int]]]:
        """Everything heard so far: a sentinel notified now arrives after every earlier one."""
        connection = await asyncpg.connect(self.dsn)
        try:
            await connection.execute(f"SELECT pg_notify('{OUTBOX_CHANNEL}', '{SENTINEL}')")
        finally:
            await connection.close()
        found = []
        with anyio.fail_after(5):
            while (entry := await (await self.queue.get()))[1] != SENTINEL:
                found.append(entry)
        return found


@pytest.fixture
async def heard(database_url: str) -> AsyncIterator[Heard]:
    listening = Heard(asyncpg_dsn(database_url))
    connection = await asyncpg.connect(listening.dsn)
    for channel in (OUTBOX_CHANNEL, WEBHOOKS_CHANNEL):
        await connection.add_listener(channel, listening.on)
    try:
        yield listening
    finally:
        await connection.close()


async def charged_tenant(
    client: Client, admin_headers: dict[str, str], runtime: Runtime, heard: Heard, endpoint: dict[str, Any]
) -> tuple[CreatedTenant, int]:
    """A tenant with a sandbox account, a webhook endpoint (``endpoint``, then its id) and one due
    subscription of a customer with a default payment method; ``heard`` listens to it from now on."""
    tenant = await create_tenant(client, admin_headers, "announce")
    account = await connect_sandbox(client, tenant)
    ada = await customer(client, tenant, "Ada")
    await payment_method(runtime, tenant, ada, account, SUCCEEDS, default=True)
    made = await client.post("/v1/webhook-endpoints", json=endpoint, headers=tenant.headers)
    assert made.status_code == 201
    now = datetime.now(UTC)
    await subscribe(runtime, tenant, await daily_plan(runtime, tenant), ada, quantity=1,
                    current_period_start=now - 1.5 * DAY, current_period_end=now - 0.5 * DAY)  # fmt: skip
    await heard.until_now()  # the setup's own announcements
    heard.schema = tenant.schema
    return tenant, int(made.json()["id"])


async def test_a_runs_charges_and_deliveries_are_announced_once_committed(
    client: Client, admin_headers: dict[str, str], runtime: Runtime, heard: Heard
) -> None:
    endpoint = {"url": "https://hooks.example.com/billing", "enabled_events": ["invoice.finalized"]}
    tenant, _ = await charged_tenant(client, admin_headers, runtime, heard, endpoint)

    await BillingRun(runtime.database, runtime.accounts).run()

    ours = [entry for entry in await heard.until_now() if tenant.schema in entry[1]]
    # Each once, and what it announces was committed when it arrived: one charge, one delivery.
    assert sorted(ours) == [
        (OUTBOX_CHANNEL, notify_payload(tenant.id, tenant.schema), (1, 1)),
        (WEBHOOKS_CHANNEL, tenant.schema, (1, 1)),
    ]


async def test_announcements_go_out_every_few_tenants_and_at_the_end(runtime: Runtime, heard: Heard) -> None:
    announcer = Announcer(runtime.database)
    tenants = [(OUTBOX_CHANNEL, f"{n}:tenant_announce_{n}") for n in range(announcing.EVERY + 3)]
    for announcement in tenants[: announcing.EVERY - 1]:
        await announcer.committed([announcement])
    assert await heard.until_now() == []  # not yet: fewer tenants than EVERY

    await announcer.committed([tenants[announcing.EVERY - 1]])
    assert [payload for _, payload, _ in await heard.until_now()] == [p for _, p in tenants[: announcing.EVERY]]

    for announcement in tenants[announcing.EVERY :]:
        await announcer.committed([announcement])
    await announcer.flush()  # the run's end
    assert [payload for _, payload, _ in await heard.until_now()] == [p for _, p in tenants[announcing.EVERY :]]
    await announcer.flush()
    assert await heard.until_now() == []  # nothing is sent twice


async def test_a_tenant_whose_endpoints_are_all_disabled_gets_no_deliveries(
    client: Client, admin_headers: dict[str, str], runtime: Runtime, heard: Heard
) -> None:
    endpoint = {"url": "https://hooks.example.com/billing"}
    tenant, endpoint_id = await charged_tenant(client, admin_headers, runtime, heard, endpoint)
    off = {"status": "disabled"}
    patched = await client.patch(f"/v1/webhook-endpoints/{endpoint_id}", json=off, headers=tenant.headers)
    assert patched.status_code == 200
    await heard.until_now()  # the change's own event
    before = await deliveries(runtime, tenant.schema)

    report = await BillingRun(runtime.database, runtime.accounts).run()

    assert report.invoices >= 1
    ours = [entry for entry in await heard.until_now() if tenant.schema in entry[1]]
    assert [(channel, payload) for channel, payload, _ in ours] == [
        (OUTBOX_CHANNEL, notify_payload(tenant.id, tenant.schema))  # the charge; no delivery to announce
    ]
    assert await deliveries(runtime, tenant.schema) == before


async def deliveries(runtime: Runtime, schema: str) -> int:
    async with runtime.database.tenant_session(schema) as session:
        return int((await session.execute(text("SELECT count(*) FROM webhook_deliveries"))).scalar_one())
