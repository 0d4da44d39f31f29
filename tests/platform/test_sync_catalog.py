"""Catalog edits mirrored to the provider accounts that have the product or plan: the outbox rows a
PATCH writes (and does not), keys, retries and failures, the manual sync, an archive that waits for a
subscription on its price, and edits made while a subscription's job is making the product."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from typing import Any

import anyio
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from billplane.plugins import (
    AdapterContext,
    Capability,
    PriceData,
    ProductData,
    ProviderRef,
)
from billplane.runtime import Runtime
from tests.conftest import CreatedTenant, create_tenant
from tests.platform.billing_seed import insert, subscribed
from tests.platform.concurrently import WAIT, held
from tests.platform.sync_fakes import (
    FAST,
    AccountRow,
    FakeAdapter,
    FakeState,
    Registration,
    StaticAccounts,
    drain,
)
from tests.platform.sync_fakes import fake_plugin as plain_fake_plugin

Client = AsyncTestClient[Litestar]
NO_EDITS = "noedits"  # a provider whose plugin does not declare catalog_updates


@dataclasses.dataclass
class Gate:
    """Stops ``ensure_price`` (after the product was made from what the job read) until released."""

    entered: anyio.Event = dataclasses.field(default_factory=anyio.Event)
    release: anyio.Event = dataclasses.field(default_factory=anyio.Event)
    armed: bool = False


class CatalogFakeAdapter(FakeAdapter):
    """The sync tests' fake provider with the ``catalog_updates`` methods: an edit is recorded as
    the object's last payload (``FakeState.payloads``), under its key (``FakeState.calls``)."""

    def __init__(self, context: AdapterContext, state: FakeState, gate: Gate) -> None:
        super().__init__(context, state)
        self.gate = gate

    async def ensure_price(self, price: PriceData, *, idempotency_key: str) -> ProviderRef:
        if self.gate.armed:
            self.gate.entered.set()
            await self.gate.release.wait()
        return await super().ensure_price(price, idempotency_key=idempotency_key)

    async def update_product(self, provider_product_id: str, product: ProductData, *, idempotency_key: str) -> None:
        await self._call(
            "update_product", idempotency_key, msgspec.to_builtins(product) | {"provider_id": provider_product_id}
        )

    async def set_price_active(self, provider_price_id: str, *, active: bool, idempotency_key: str) -> None:
        await self._call("set_price_active", idempotency_key, {"provider_id": provider_price_id, "active": active})


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
def accounts(app: Litestar, fake: FakeState, gate: Gate) -> StaticAccounts:
    """ "fake" mirrors catalog edits; "noedits" is the same fake without the capability."""
    app_runtime: Runtime = app.state.runtime
    editing = dataclasses.replace(
        plain_fake_plugin(fake), create_adapter=lambda context: CatalogFakeAdapter(context, fake, gate)
    )
    plain = plain_fake_plugin(fake, NO_EDITS)
    plain = dataclasses.replace(plain, capabilities=plain.capabilities - {Capability.CATALOG_UPDATES})
    app_runtime.plugins.add_plugin(Registration([editing, plain]), "tests-catalog-fakes")
    accounts = StaticAccounts(app_runtime.plugins)
    app_runtime.accounts = accounts
    return accounts


@dataclasses.dataclass(frozen=True)
class Seeded:
    tenant: CreatedTenant
    product: int
    plan: int
    subscription: int


async def seeded(client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime) -> Seeded:
    """A tenant whose default account 101 ("fake") got product "API" and plan "Basic" with a
    subscription's create, and whose second default account 102 never needed them."""
    tenant = await create_tenant(client, admin_headers, "catsync")
    accounts.add(AccountRow(id=101, tenant_id=tenant.id, tenant_schema=tenant.schema))
    accounts.add(AccountRow(id=102, tenant_id=tenant.id, tenant_schema=tenant.schema))
    async with worker.database.tenant_session(tenant.schema) as session:
        _, subscription = await subscribed(session)
        plan = int(await session.scalar(text("SELECT plan_id FROM subscriptions WHERE id = :s"), {"s": subscription}))
        product = int(await session.scalar(text("SELECT product_id FROM plans WHERE id = :p"), {"p": plan}))
    synced = await client.post(f"/v1/subscriptions/{subscription}/sync", headers=tenant.headers)
    assert synced.status_code == 202, synced.text
    await drain(worker)
    return Seeded(tenant, product, plan, subscription)


async def outbox(worker: Runtime, tenant: CreatedTenant, kind: str) -> list[dict[str, Any]]:
    async with worker.database.tenant_session(tenant.schema) as session:
        rows = await session.execute(text("SELECT * FROM outbox WHERE kind = :kind ORDER BY id"), {"kind": kind})
        return [dict(row._mapping) for row in rows]  # noqa: SLF001 - SQLAlchemy's public row mapping


async def execute(worker: Runtime, tenant: CreatedTenant, statement: str, **params: object) -> None:
    async with worker.database.tenant_session(tenant.schema) as session:
        await session.execute(text(statement), params)


async def waiting_for_a_lock(worker: Runtime, statement: str) -> None:
    """Until a statement containing ``statement`` waits for a row lock in this test's database."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND query LIKE :statement"
    )
    with anyio.fail_after(10):
        while True:
            async with worker.database.transaction() as connection:  # a new snapshot of the activity
                if await connection.scalar(query, {"statement": f"%{statement}%"}):
                    return
            await asyncio.sleep(0.02)


def provider_id(fake: FakeState, method: str) -> str:
    [key] = fake.created(method)
    return fake.by_key[key]


async def patch(client: Client, seed: Seeded, what: str, body: Mapping[str, object]) -> dict[str, Any]:
    object_id = seed.product if what == "products" else seed.plan
    response = await client.patch(f"/v1/{what}/{object_id}", json=body, headers=seed.tenant.headers)
    assert response.status_code == 200, response.text
    shown: dict[str, Any] = response.json()
    return shown


async def shown(client: Client, seed: Seeded, what: str) -> dict[str, Any]:
    object_id = seed.product if what == "products" else seed.plan
    found: dict[str, Any] = (await client.get(f"/v1/{what}/{object_id}", headers=seed.tenant.headers)).json()
    return found


async def renamed_in_vain(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime, fake: FakeState
) -> Seeded:
    """``seeded``, then the product renamed "API Pro" and its mirror failed at account 101."""
    seed = await seeded(client, admin_headers, accounts, worker)
    fake.failures += [("permanent", "no such product")]
    await patch(client, seed, "products", {"name": "API Pro"})
    await drain(worker)
    return seed


async def test_a_rename_reaches_only_the_accounts_that_have_the_product(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime, fake: FakeState
) -> None:
    seed = await seeded(client, admin_headers, accounts, worker)
    product_at_101 = provider_id(fake, "ensure_product")
    assert (await shown(client, seed, "products"))["sync_status"] == "none"  # made on first need: no edit yet

    renamed = await patch(client, seed, "products", {"name": "API Pro", "description": "Faster"})

    assert renamed["sync_status"] == "pending"
    [row] = await outbox(worker, seed.tenant, "product.update")
    assert (row["object_id"], row["provider_account_id"], row["status"]) == (seed.product, 101, "pending")
    await drain(worker)
    assert fake.calls[-1] == ("update_product", f"billplane-{seed.tenant.id}-{row['id']}")
    assert fake.payloads[product_at_101] == {
        "product_id": seed.product,
        "name": "API Pro",
        "description": "Faster",
        "active": True,
        "provider_id": product_at_101,
    }
    after = await shown(client, seed, "products")
    assert (after["sync_status"], after["last_sync_error"], after["synced_at"] is not None) == ("synced", None, True)
    async with worker.database.tenant_session(seed.tenant.schema) as session:
        events = await session.scalar(text("SELECT count(*) FROM events WHERE type = 'product.updated'"))
    assert events == 1  # the PATCH's own: mirroring it is no event

    # Nothing a provider shows changed: no row, no call.
    await patch(client, seed, "products", {"name": "API Pro", "metadata": {"tier": "gold"}})
    await patch(client, seed, "plans", {"name": "Basic (2026)", "description": "renamed"})
    assert len(await outbox(worker, seed.tenant, "product.update")) == 1
    assert await outbox(worker, seed.tenant, "plan.update") == []


async def test_archiving_a_plan_archives_its_price_and_reactivating_restores_it(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime, fake: FakeState
) -> None:
    seed = await seeded(client, admin_headers, accounts, worker)
    price_at_101 = provider_id(fake, "ensure_price")

    archived = await patch(client, seed, "plans", {"active": False})
    assert (archived["active"], archived["sync_status"]) == (False, "pending")
    await drain(worker)
    assert fake.payloads[price_at_101] == {"provider_id": price_at_101, "active": False}
    assert (await shown(client, seed, "plans"))["sync_status"] == "synced"

    await patch(client, seed, "plans", {"active": True})
    await drain(worker)
    assert fake.payloads[price_at_101] == {"provider_id": price_at_101, "active": True}
    first, second = await outbox(worker, seed.tenant, "plan.update")
    assert [call for call in fake.calls if call[0] == "set_price_active"] == [
        ("set_price_active", f"billplane-{seed.tenant.id}-{first['id']}"),
        ("set_price_active", f"billplane-{seed.tenant.id}-{second['id']}"),
    ]
    # Archiving the product archives it at the provider, not its prices (its plans keep working).
    await patch(client, seed, "products", {"active": False})
    await drain(worker)
    assert fake.payloads[provider_id(fake, "ensure_product")]["active"] is False
    assert fake.payloads[price_at_101]["active"] is True


async def test_a_product_nowhere_yet_or_at_a_provider_without_the_capability_queues_nothing(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime, fake: FakeState
) -> None:
    tenant = await create_tenant(client, admin_headers, "catsync")
    accounts.add(AccountRow(id=103, tenant_id=tenant.id, tenant_schema=tenant.schema, provider=NO_EDITS))
    product = (await client.post("/v1/products", json={"name": "Solo"}, headers=tenant.headers)).json()
    renamed = await client.patch(f"/v1/products/{product['id']}", json={"name": "Duo"}, headers=tenant.headers)
    assert renamed.json()["sync_status"] == "none"

    async with worker.database.tenant_session(tenant.schema) as session:
        _, subscription = await subscribed(session)
        seeded_product = await session.scalar(text("SELECT id FROM products WHERE name = 'API'"))
    await client.post(f"/v1/subscriptions/{subscription}/sync", headers=tenant.headers)
    await drain(worker)
    assert [method for method, _ in fake.calls][-1] == "create_subscription"  # the product is at 103 now
    renamed = await client.patch(f"/v1/products/{seeded_product}", json={"name": "API 2"}, headers=tenant.headers)

    assert renamed.json()["sync_status"] == "none"
    async with worker.database.tenant_session(tenant.schema) as session:
        kinds = (await session.execute(text("SELECT kind FROM outbox ORDER BY id"))).scalars().all()
    assert kinds == ["customer.ensure", "subscription.create"]


async def test_a_failed_rename_shows_on_the_product_and_the_next_edit_is_mirrored(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime, fake: FakeState
) -> None:
    seed = await seeded(client, admin_headers, accounts, worker)
    fake.failures += [("retryable", "provider is down"), ("permanent", "no such product")]

    await patch(client, seed, "products", {"name": "API Pro"})
    await drain(worker)

    [failed] = await outbox(worker, seed.tenant, "product.update")
    assert (failed["status"], failed["attempts"]) == ("failed", 2)
    after = await shown(client, seed, "products")
    assert (after["sync_status"], after["last_sync_error"]) == ("failed", "no such product (fake_error)")

    await patch(client, seed, "products", {"description": "Faster"})
    await drain(worker)
    first, second = await outbox(worker, seed.tenant, "product.update")
    assert (first["status"], second["status"]) == ("failed", "done")
    keys = [key for method, key in fake.calls if method == "update_product"]
    # The failed row's attempts under its key, then the next row's under its own.
    assert keys == [f"billplane-{seed.tenant.id}-{first['id']}"] * 2 + [f"billplane-{seed.tenant.id}-{second['id']}"]
    assert (
        fake.payloads[provider_id(fake, "ensure_product")]["name"],
        fake.payloads[provider_id(fake, "ensure_product")]["description"],
    ) == ("API Pro", "Faster")
    after = await shown(client, seed, "products")
    assert (after["sync_status"], after["last_sync_error"]) == ("synced", None)


async def test_a_product_or_plan_whose_mirror_failed_is_sent_again_by_its_sync_route(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime, fake: FakeState
) -> None:
    seed = await renamed_in_vain(client, admin_headers, accounts, worker, fake)
    assert (await shown(client, seed, "products"))["sync_status"] == "failed"

    synced = await client.post(f"/v1/products/{seed.product}/sync", headers=seed.tenant.headers)
    assert (synced.status_code, synced.json()["sync_status"]) == (202, "pending"), synced.text
    await drain(worker)
    first, second = await outbox(worker, seed.tenant, "product.update")
    assert (first["status"], second["status"]) == ("failed", "done")  # a new row, with a key of its own
    assert fake.payloads[provider_id(fake, "ensure_product")]["name"] == "API Pro"
    assert (await shown(client, seed, "products"))["sync_status"] == "synced"

    plan = await client.post(f"/v1/plans/{seed.plan}/sync", headers=seed.tenant.headers)
    assert plan.status_code == 202, plan.text
    await drain(worker)
    [resent] = await outbox(worker, seed.tenant, "plan.update")
    assert resent["status"] == "done"


async def test_an_account_deleted_gets_no_more_edits(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime, fake: FakeState
) -> None:
    seed = await renamed_in_vain(client, admin_headers, accounts, worker, fake)
    accounts.rows.pop(101)  # the only account with the product (and the customer) is deleted

    await patch(client, seed, "products", {"name": "API Max"})
    await patch(client, seed, "plans", {"active": False})
    async with worker.database.tenant_session(seed.tenant.schema) as session:
        customer = await session.scalar(text("SELECT customer_id FROM subscriptions"))
    assert await outbox(worker, seed.tenant, "customer.ensure") != []  # it was made at 101 too
    renamed = await client.patch(f"/v1/customers/{customer}", json={"name": "Renamed"}, headers=seed.tenant.headers)
    assert renamed.status_code == 200, renamed.text

    [failed] = await outbox(worker, seed.tenant, "product.update")  # the row from before the delete, alone
    assert failed["status"] == "failed"
    assert await outbox(worker, seed.tenant, "plan.update") == []
    assert await outbox(worker, seed.tenant, "customer.update") == []


async def test_an_archive_waits_for_a_subscription_create_on_its_price(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime, fake: FakeState
) -> None:
    seed = await seeded(client, admin_headers, accounts, worker)
    # Rows waiting for another are looked at again in 5 s, as in production: a drain leaves them.
    worker.sync_options = dataclasses.replace(FAST, not_ready_delay=5.0)
    async with worker.database.tenant_session(seed.tenant.schema) as session:
        customer = await session.scalar(
            text("SELECT customer_id FROM subscriptions WHERE id = :s"), {"s": seed.subscription}
        )
        second = await insert(session, "subscriptions", customer_id=customer, plan_id=seed.plan, status="active")
    await client.post(f"/v1/subscriptions/{second}/sync", headers=seed.tenant.headers)
    # Its create backs off (the provider was down), and the plan is archived meanwhile.
    await execute(
        worker,
        seed.tenant,
        "UPDATE outbox SET next_attempt_at = now() + interval '1 hour' WHERE kind = 'subscription.create' "
        "AND status = 'pending'",
    )
    await patch(client, seed, "plans", {"active": False})

    await drain(worker)

    [waiting] = await outbox(worker, seed.tenant, "plan.update")
    assert (waiting["status"], waiting["attempts"]) == ("pending", 0)
    assert "set_price_active" not in [method for method, _ in fake.calls]
    assert (await shown(client, seed, "plans"))["last_sync_error"] == (
        "waiting for a subscription on the plan to reach the provider before its price is archived"
    )

    await execute(worker, seed.tenant, "UPDATE outbox SET next_attempt_at = now() WHERE kind = 'subscription.create'")
    await drain(worker)
    await execute(worker, seed.tenant, "UPDATE outbox SET next_attempt_at = now() WHERE kind = 'plan.update'")
    await drain(worker)  # the archive, its 5 s wait cut short

    methods = [method for method, _ in fake.calls]
    assert methods[-2:] == ["create_subscription", "set_price_active"]
    assert fake.payloads[provider_id(fake, "ensure_price")]["active"] is False
    assert (await shown(client, seed, "plans"))["sync_status"] == "synced"


async def test_edits_committed_while_a_subscriptions_job_makes_the_product_reach_it(  # noqa: PLR0917 - pytest fixtures
    client: Client,
    admin_headers: dict[str, str],
    accounts: StaticAccounts,
    worker: Runtime,
    fake: FakeState,
    gate: Gate,
) -> None:
    # The job read product and plan, made the product at the account, and is making the price when
    # the tenant renames the product and archives the plan: those requests find no account yet.
    tenant = await create_tenant(client, admin_headers, "catsync")
    accounts.add(AccountRow(id=104, tenant_id=tenant.id, tenant_schema=tenant.schema))
    async with worker.database.tenant_session(tenant.schema) as session:
        _, subscription = await subscribed(session)
        product = await session.scalar(text("SELECT id FROM products"))
        plan = await session.scalar(text("SELECT id FROM plans"))
    await client.post(f"/v1/subscriptions/{subscription}/sync", headers=tenant.headers)
    gate.armed = True
    job = asyncio.ensure_future(drain(worker))
    with anyio.fail_after(10):
        await gate.entered.wait()
    renamed = await client.patch(f"/v1/products/{product}", json={"name": "API Pro"}, headers=tenant.headers)
    archived = await client.patch(f"/v1/plans/{plan}", json={"active": False}, headers=tenant.headers)
    assert (renamed.json()["sync_status"], archived.json()["sync_status"]) == ("none", "none")
    gate.release.set()
    await job
    await drain(worker)

    made = provider_id(fake, "ensure_product")
    assert fake.payloads[made]["name"] == "API Pro"
    assert fake.payloads[provider_id(fake, "ensure_price")]["active"] is False
    methods = [method for method, _ in fake.calls]
    # The price is archived only after the subscription that needed it was made on it.
    assert methods.index("create_subscription") < methods.index("set_price_active")
    assert {row["provider_account_id"] for row in await outbox(worker, tenant, "product.update")} == {104}
    shown_product = (await client.get(f"/v1/products/{product}", headers=tenant.headers)).json()
    assert shown_product["sync_status"] == "synced"


async def test_a_rename_whose_update_holds_the_product_while_the_job_records_it_reaches_it(  # noqa: PLR0917 - pytest fixtures
    client: Client,
    admin_headers: dict[str, str],
    accounts: StaticAccounts,
    worker: Runtime,
    fake: FakeState,
    database_url: str,
) -> None:
    # A rename that has updated the product, and looked for accounts before the job's mapping was
    # committed, but not committed yet: the job waits for it rather than read the old name.
    tenant = await create_tenant(client, admin_headers, "catsync")
    accounts.add(AccountRow(id=105, tenant_id=tenant.id, tenant_schema=tenant.schema))
    async with worker.database.tenant_session(tenant.schema) as session:
        _, subscription = await subscribed(session)
    await client.post(f"/v1/subscriptions/{subscription}/sync", headers=tenant.headers)

    async with held(database_url, tenant.schema, "UPDATE products SET name = 'API Pro'"):
        job = asyncio.ensure_future(drain(worker))
        await waiting_for_a_lock(worker, "FOR SHARE")  # its mapping inserted, reading the product
        await asyncio.sleep(WAIT)
        assert not job.done()
    await job
    await drain(worker)

    assert fake.payloads[provider_id(fake, "ensure_product")]["name"] == "API Pro"
    [row] = await outbox(worker, tenant, "product.update")
    assert (row["provider_account_id"], row["status"]) == (105, "done")
