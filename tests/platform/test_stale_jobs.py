"""A job a deleted tenant left queued never works on the rows of a new tenant given the same slug
(and so the same schema name, its row ids starting again at 1): it is dropped, and so is the
answer of a provider call that was in flight when the tenant went."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from billplane.db.job_owner import owned_session
from billplane.events.jobs import DeliveryRef
from billplane.events.worker import webhook_services
from billplane.runtime import Runtime
from billplane.sync.refs import EventRef, OutboxRef
from billplane.sync.worker import worker_services
from tests.conftest import unique_slug
from tests.platform.billing_seed import insert
from tests.platform.sync_fakes import AccountRow, FakeAdapter, StaticAccounts, clear_jobs

Client = AsyncTestClient[Litestar]
ROWS = (
    "SELECT (SELECT status || '/' || attempts FROM outbox WHERE id = :outbox) AS outbox, "
    "(SELECT status || '/' || attempts FROM webhook_deliveries WHERE id = :delivery) AS delivery, "
    "(SELECT status FROM provider_events WHERE id = :event) AS event"
)


async def _tenant(client: Client, admin_headers: dict[str, str], slug: str) -> tuple[int, str]:
    created = await client.post("/v1/admin/tenants", json={"slug": slug, "name": "Acme"}, headers=admin_headers)
    assert created.status_code == 201, created.text
    return created.json()["tenant"]["id"], created.json()["api_key"]["key"]


async def test_a_deleted_tenants_jobs_leave_the_new_tenants_rows_alone(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    await clear_jobs(runtime)
    slug = unique_slug("stale")
    old_id, _ = await _tenant(client, admin_headers, slug)
    assert (await client.delete(f"/v1/admin/tenants/{slug}", headers=admin_headers)).status_code == 204
    new_id, key = await _tenant(client, admin_headers, slug)  # the same schema name, a new tenant
    headers = {"Authorization": f"Bearer {key}"}
    body = {"url": "https://hooks.example.com/acme", "enabled_events": ["customer.*"]}
    endpoint = await client.post("/v1/webhook-endpoints", json=body, headers=headers)
    assert endpoint.status_code == 201, endpoint.text
    schema = f"tenant_{slug}"
    async with runtime.database.tenant_session(schema) as session:
        # Disabled: delivering fails the delivery without calling out (no network in tests).
        await session.execute(text("UPDATE webhook_endpoints SET status = 'disabled'"))
        ids = {
            "outbox": await insert(session, "outbox", kind="customer.ensure", object_id=1, provider_account_id=999),
            "delivery": await insert(
                session, "webhook_deliveries", endpoint_id=endpoint.json()["id"],
                event_id=await insert(session, "events", type="customer.updated", object_type="customer",
                                      object_id=1, data={}),
            ),
            "event": await insert(
                session, "provider_events", provider="sandbox", provider_account_id=999, event_id="evt_1",
                type="customer.updated", provider_object_id="cus_1", occurred_at=datetime.now(UTC), raw_body=b"{}",
                event={"event_id": "evt_1", "type": "customer.updated", "occurred_at": "2030-01-01T00:00:00Z",
                       "provider_object_id": "cus_1"}, status="received",
            ),
        }  # fmt: skip
    services, webhooks = worker_services(runtime), webhook_services(runtime)

    async def run_as(tenant_id: int) -> list[str]:
        return [
            await services.performer.perform(OutboxRef(tenant_id, schema, ids["outbox"])),
            await webhooks.deliverer.deliver(DeliveryRef(tenant_id, schema, ids["delivery"])),
            await services.applier.apply(EventRef(tenant_id, schema, ids["event"])),
        ]

    async def rows() -> dict[str, object]:
        async with runtime.database.tenant_session(schema) as session:
            return dict((await session.execute(text(ROWS), ids)).one()._mapping)  # noqa: SLF001

    assert await run_as(old_id) == ["skipped"] * 3
    assert await rows() == {"outbox": "pending/0", "delivery": "pending/0", "event": "received"}
    assert OutboxRef(old_id, schema, 1).queueing_lock != OutboxRef(new_id, schema, 1).queueing_lock

    # The new tenant's own jobs do work on them: the account and the endpoint are not usable, the
    # event is about an object billplane does not know.
    assert await run_as(new_id) == ["failed", "failed", "ignored"]
    assert await rows() == {"outbox": "failed/1", "delivery": "failed/0", "event": "ignored"}


async def test_a_provider_answer_that_arrives_after_its_tenant_went_is_not_recorded_in_the_new_tenant(
    client: Client,
    admin_headers: dict[str, str],
    worker: Runtime,
    accounts: StaticAccounts,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slug = unique_slug("inflight")
    schema = f"tenant_{slug}"
    old_id, _ = await _tenant(client, admin_headers, slug)
    account = accounts.add(AccountRow(id=700_000 + secrets.randbelow(100_000), tenant_id=old_id, tenant_schema=schema))

    async def customer_to_create() -> tuple[int, int]:
        async with worker.database.tenant_session(schema) as session:
            customer = await insert(session, "customers", name="Ada")
            kind = "customer.ensure"
            return customer, await insert(
                session, "outbox", kind=kind, object_id=customer, provider_account_id=account.id
            )

    customer, outbox = await customer_to_create()
    ensure = FakeAdapter.ensure_customer

    async def tenant_replaced_meanwhile(self: FakeAdapter, *args: Any, **kwargs: Any) -> Any:
        created = await ensure(self, *args, **kwargs)
        assert (await client.delete(f"/v1/admin/tenants/{slug}", headers=admin_headers)).status_code == 204
        await _tenant(client, admin_headers, slug)
        assert await customer_to_create() == (customer, outbox)  # the same ids, in the new tenant
        return created

    monkeypatch.setattr(FakeAdapter, "ensure_customer", tenant_replaced_meanwhile)

    assert await worker_services(worker).performer.perform(OutboxRef(old_id, schema, outbox)) == "skipped"
    async with worker.database.tenant_session(schema) as session:
        mapped = await session.scalar(text("SELECT count(*) FROM provider_customers"))
        row = (await session.execute(text("SELECT status, attempts FROM outbox WHERE id = :id"), {"id": outbox})).one()
    assert (mapped, tuple(row)) == (0, ("pending", 0))


async def test_two_transactions_holding_one_tenant_run_at_once(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    # The hold keeps the tenant from being deleted, and nothing else: a stronger lock than KEY
    # SHARE would run every job and webhook of the tenant one at a time.
    slug = unique_slug("hold")
    tenant_id, _ = await _tenant(client, admin_headers, slug)
    schema = f"tenant_{slug}"
    async with owned_session(runtime.database, tenant_id, schema):
        second = owned_session(runtime.database, tenant_id, schema)
        async with asyncio.timeout(10):  # a wait for the first to end would never end: it is held here
            async with second as session:
                assert await session.scalar(text("SELECT count(*) FROM customers")) == 0
