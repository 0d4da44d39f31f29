"""What sync changes in an object as the API shows it is an event: the provider's answer to a
subscription's create call, a customer's new provider id, and an incomplete subscription's expiry.

Each event's data is the object as the API shows it once the change committed; sync bookkeeping
alone (``sync_status`` moving while work is under way) is no event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text

from billplane.plugins.contract import NextAction, ProviderSubscription, SubscriptionChange, SubscriptionData
from billplane.runtime import Runtime
from billplane.sync.expiry import IncompleteExpiry
from billplane.sync.listener import asyncpg_dsn
from tests.conftest import CreatedTenant, create_tenant
from tests.platform.billing_seed import subscribed
from tests.platform.sync_fakes import AccountRow, FakeAdapter, FakeState, StaticAccounts, drain
from tests.platform.test_emitted_customers_and_catalog import listed, shown, types_of
from tests.platform.test_webhooks import Client

UpdateSubscription = Callable[..., Awaitable[ProviderSubscription]]

APPROVE = "https://approve.example/sub"


async def _seeded(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, runtime: Runtime, account_id: int
) -> tuple[CreatedTenant, int, int]:
    """A customer and an active subscription, mirrored nowhere yet; the tenant has a fake account."""
    tenant = await create_tenant(client, admin_headers, "emit")
    accounts.add(AccountRow(id=account_id, tenant_id=tenant.id, tenant_schema=tenant.schema))
    async with runtime.database.tenant_session(tenant.schema) as session:
        customer, subscription = await subscribed(session)
    return tenant, customer, subscription


async def test_the_providers_answer_to_a_create_is_an_event_and_so_is_the_customers_provider_id(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime, fake: FakeState
) -> None:
    tenant, customer, subscription = await _seeded(client, admin_headers, accounts, worker, 901)

    synced = await client.post(f"/v1/subscriptions/{subscription}/sync", headers=tenant.headers)
    assert synced.status_code == 202, synced.text
    assert types_of(await listed(client, tenant, "subscription", subscription)) == []  # nothing changed yet
    await drain(worker)

    shown_subscription = await shown(client, tenant, f"/v1/subscriptions/{subscription}")
    assert shown_subscription["sync_status"] == "synced"
    assert shown_subscription["provider_subscription_id"] is not None
    [updated] = await listed(client, tenant, "subscription", subscription)
    assert (updated["type"], updated["data"]) == ("subscription.updated", shown_subscription)
    shown_customer = await shown(client, tenant, f"/v1/customers/{customer}")
    assert [ref["provider_account_id"] for ref in shown_customer["provider_ids"]] == [901]
    [customer_updated] = await listed(client, tenant, "customer", customer)
    assert (customer_updated["type"], customer_updated["data"]) == ("customer.updated", shown_customer)

    # Sync again: the provider has both already; nothing it answers changes them, no event.
    again = await client.post(f"/v1/subscriptions/{subscription}/sync", headers=tenant.headers)
    assert again.status_code == 202
    await drain(worker)
    assert len(await listed(client, tenant, "subscription", subscription)) == 1
    assert len(await listed(client, tenant, "customer", customer)) == 1
    assert [method for method, _ in fake.calls].count("create_subscription") == 1


async def test_a_create_answered_incomplete_shows_its_next_action_in_its_event(
    client: Client,
    admin_headers: dict[str, str],
    accounts: StaticAccounts,
    worker: Runtime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def waiting_for_approval(
        self: FakeAdapter, subscription: SubscriptionData, *, idempotency_key: str
    ) -> ProviderSubscription:
        provider_id = await self._call("create_subscription", idempotency_key, {"id": subscription.subscription_id})
        action = NextAction(type="redirect", url=APPROVE)
        return ProviderSubscription(provider_id=provider_id, status="incomplete", next_action=action)

    monkeypatch.setattr(FakeAdapter, "create_subscription", waiting_for_approval)
    tenant, _, subscription = await _seeded(client, admin_headers, accounts, worker, 902)

    assert (await client.post(f"/v1/subscriptions/{subscription}/sync", headers=tenant.headers)).status_code == 202
    await drain(worker)

    after = await shown(client, tenant, f"/v1/subscriptions/{subscription}")
    assert (after["status"], after["next_action"]) == ("incomplete", {"type": "redirect", "url": APPROVE})
    [updated] = await listed(client, tenant, "subscription", subscription)
    assert (updated["type"], updated["data"]) == ("subscription.updated", after)


def _asking_approval(meanwhile: Callable[[], _Meanwhile | None] = lambda: None) -> UpdateSubscription:
    """``FakeAdapter.update_subscription`` answering every change with an approval link (PayPal's
    way); ``meanwhile()``, when it gives one, changes the subscription while the call is in flight."""

    async def update_subscription(
        self: FakeAdapter, provider_subscription_id: str, change: SubscriptionChange, *, idempotency_key: str
    ) -> ProviderSubscription:
        await self._call("update_subscription", idempotency_key, {"provider_id": provider_subscription_id})
        other = meanwhile()
        if other is not None:
            await other.change()
        action = NextAction(type="redirect", url=APPROVE)
        return ProviderSubscription(provider_id=provider_subscription_id, status="active", next_action=action)

    return update_subscription


async def test_a_change_the_provider_asks_the_customer_to_approve_is_an_event(
    client: Client,
    admin_headers: dict[str, str],
    accounts: StaticAccounts,
    worker: Runtime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(FakeAdapter, "update_subscription", _asking_approval())
    tenant, _, subscription = await _seeded(client, admin_headers, accounts, worker, 904)
    url = f"/v1/subscriptions/{subscription}"
    assert (await client.post(f"{url}/sync", headers=tenant.headers)).status_code == 202
    await drain(worker)
    created = len(await listed(client, tenant, "subscription", subscription))

    changed = await client.patch(url, json={"quantity": 3, "proration": "none"}, headers=tenant.headers)
    assert changed.status_code == 200, changed.text
    await drain(worker)

    after = await shown(client, tenant, url)
    assert after["next_action"] == {"type": "redirect", "url": APPROVE}
    events = await listed(client, tenant, "subscription", subscription)
    assert types_of(events)[created:] == ["subscription.updated", "subscription.updated"]  # the PATCH, the answer
    assert events[-1]["data"] == after

    # Another change answered with the same link: the PATCH is an event, the answer changes nothing shown.
    again = await client.patch(url, json={"quantity": 4, "proration": "none"}, headers=tenant.headers)
    assert again.status_code == 200, again.text
    await drain(worker)
    assert len(await listed(client, tenant, "subscription", subscription)) == created + 3


class _Meanwhile:
    """Another transaction (a PATCH's, a job's) that changes the subscription while the worker
    calls the provider (``change``, from the fake adapter's call) and commits only once the
    worker's transaction recording the answer waits for it (``drain``): between that transaction's
    first read and its write."""

    def __init__(self, database_url: str, statement: str, *args: object) -> None:
        self.dsn = asyncpg_dsn(database_url)
        self.statement, self.args = statement, args
        self.changed = asyncio.Event()
        self.connection: asyncpg.Connection | None = None

    async def change(self) -> None:
        assert self.connection is not None
        await self.connection.execute(self.statement, *self.args)
        self.changed.set()

    async def drain(self, worker: Runtime) -> None:
        self.connection = await asyncpg.connect(self.dsn)
        transaction = self.connection.transaction()
        await transaction.start()
        draining = asyncio.create_task(drain(worker))
        try:
            await asyncio.wait_for(self.changed.wait(), 30)
            await self._until_waited_for(self.connection.get_server_pid())
            await transaction.commit()
            await draining
        finally:
            await self.connection.close()  # after a failure, the worker waits no longer
            if not draining.done():
                draining.cancel()

    async def _until_waited_for(self, holder: int, *, within: float = 30.0) -> None:
        connection = await asyncpg.connect(self.dsn)
        waiting = "SELECT EXISTS (SELECT FROM pg_locks WHERE NOT granted AND $1 = ANY(pg_blocking_pids(pid)))"
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + within
            while not await connection.fetchval(waiting, holder):
                assert loop.time() < deadline, f"nothing waited for backend {holder}'s locks within {within} s"
                await asyncio.sleep(0.01)
        finally:
            await connection.close()


async def test_a_change_committed_while_a_create_answer_is_recorded_is_neither_undone_nor_misreported(
    client: Client,
    admin_headers: dict[str, str],
    accounts: StaticAccounts,
    worker: Runtime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The create call's answer is recorded on the subscription as it is once it can be written:
    an incomplete subscription's expiry, committed after the worker read it and before the answer
    is written, stays (the answer is older news), and the answer's event shows the subscription
    as the API does."""
    tenant = await create_tenant(client, admin_headers, "emit")
    accounts.add(AccountRow(id=905, tenant_id=tenant.id, tenant_schema=tenant.schema))
    async with worker.database.tenant_session(tenant.schema) as session:
        _, subscription = await subscribed(session, status="incomplete")
    expiry = _Meanwhile(
        worker.settings.database.url,
        f"UPDATE \"{tenant.schema}\".subscriptions SET status = 'incomplete_expired' WHERE id = $1",
        subscription,
    )
    created = FakeAdapter.create_subscription

    async def expired_meanwhile(
        self: FakeAdapter, data: SubscriptionData, *, idempotency_key: str
    ) -> ProviderSubscription:
        await expiry.change()
        return await created(self, data, idempotency_key=idempotency_key)

    monkeypatch.setattr(FakeAdapter, "create_subscription", expired_meanwhile)
    assert (await client.post(f"/v1/subscriptions/{subscription}/sync", headers=tenant.headers)).status_code == 202
    await expiry.drain(worker)

    after = await shown(client, tenant, f"/v1/subscriptions/{subscription}")
    assert (after["status"], after["sync_status"]) == ("incomplete_expired", "synced")
    assert after["provider_subscription_id"] is not None
    [answered] = await listed(client, tenant, "subscription", subscription)  # the expiry's own is the job's
    assert (answered["type"], answered["data"]) == ("subscription.updated", after)


async def test_a_change_committed_while_a_change_answer_is_recorded_is_not_taken_for_the_answers(
    client: Client,
    admin_headers: dict[str, str],
    accounts: StaticAccounts,
    worker: Runtime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A change's answer repeating the approval link the API shows is no event, even when another
    change of the subscription commits after the worker read it and before the answer is written."""

    meanwhile: _Meanwhile | None = None
    monkeypatch.setattr(FakeAdapter, "update_subscription", _asking_approval(lambda: meanwhile))
    tenant, _, subscription = await _seeded(client, admin_headers, accounts, worker, 906)
    url = f"/v1/subscriptions/{subscription}"
    assert (await client.post(f"{url}/sync", headers=tenant.headers)).status_code == 202
    await drain(worker)
    changed = await client.patch(url, json={"quantity": 3, "proration": "none"}, headers=tenant.headers)
    assert changed.status_code == 200, changed.text
    await drain(worker)  # the answer asks for approval: its link shows
    before = len(await listed(client, tenant, "subscription", subscription))

    meanwhile = _Meanwhile(
        worker.settings.database.url,
        f'UPDATE "{tenant.schema}".subscriptions SET quantity = 7 WHERE id = $1',
        subscription,
    )
    again = await client.patch(url, json={"quantity": 4, "proration": "none"}, headers=tenant.headers)
    assert again.status_code == 200, again.text
    await meanwhile.drain(worker)

    after = await shown(client, tenant, url)
    assert (after["quantity"], after["next_action"]) == (7, {"type": "redirect", "url": APPROVE})
    events = await listed(client, tenant, "subscription", subscription)
    assert [event["data"]["quantity"] for event in events[before:]] == [4]  # the PATCH's alone


async def _incomplete(runtime: Runtime, tenant: CreatedTenant, account_id: int, *, hours_ago: int, **more: Any) -> int:
    async with runtime.database.tenant_session(tenant.schema) as session:
        _, subscription = await subscribed(
            session, status="incomplete", provider="fake", provider_account_id=account_id, **more
        )
        await session.execute(
            text("UPDATE subscriptions SET created_at = now() - make_interval(hours => :h) WHERE id = :id"),
            {"h": hours_ago, "id": subscription},
        )
    return subscription


async def test_an_expired_incomplete_subscription_is_an_event(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers, "emit")
    account = accounts.add(AccountRow(id=903, tenant_id=tenant.id, tenant_schema=tenant.schema))
    old = await _incomplete(
        worker, tenant, account.id, hours_ago=24, provider_subscription_id="sub_old", next_action_type="redirect",
        next_action_url=APPROVE,
    )  # fmt: skip
    young = await _incomplete(worker, tenant, account.id, hours_ago=1, provider_subscription_id="sub_new")

    assert await IncompleteExpiry(worker.database, worker.jobs, hours=23).expire() == 1
    after = await shown(client, tenant, f"/v1/subscriptions/{old}")
    assert await IncompleteExpiry(worker.database, worker.jobs, hours=23).expire() == 0

    assert (after["status"], after["next_action"]) == ("incomplete_expired", None)
    [expired] = await listed(client, tenant, "subscription", old)
    assert (expired["type"], expired["data"]) == ("subscription.incomplete_expired", after)
    assert await listed(client, tenant, "subscription", young) == []
