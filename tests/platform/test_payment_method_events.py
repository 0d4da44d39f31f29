"""Payment methods attached, changed or detached at the provider itself (Stripe's Dashboard, a
card updater) are learnt from its webhooks, as if the tenant had registered or detached them.

Before, a method added at the provider was never known to billplane (its token had to be
registered by hand), and one detached there was still charged.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import text

from billplane.runtime import Runtime
from tests.conftest import CreatedTenant
from tests.platform.billing_seed import insert
from tests.platform.invoices.helpers import rows
from tests.platform.sync_fakes import PROVIDER, AccountRow, StaticAccounts, drain
from tests.platform.test_webhooks import T0, Client, deliver, event, stored, tenant_with_subscription

CARD = "pm_card_1"


def method(at: str | None = "cus_1", **more: Any) -> dict[str, Any]:
    card = {"provider_payment_method_id": CARD, "type": "card", "brand": "visa", "last4": "4242"}
    return {"payment_method": card | {"exp_month": 12, "exp_year": 2030, "provider_customer_id": at} | more}


async def with_provider_customer(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime, account_id: int
) -> tuple[CreatedTenant, AccountRow, int, int]:
    """A tenant whose customer Ada is ``cus_1`` at an account of the fake provider, subscribed there:
    (tenant, account, Ada, her subscription)."""
    tenant, account, subscription = await tenant_with_subscription(client, admin_headers, accounts, worker, account_id)
    async with worker.database.tenant_session(tenant.schema) as session:
        ada = int(await session.scalar(text(f"SELECT customer_id FROM subscriptions WHERE id = {subscription}")))
        await insert(
            session, "provider_customers", customer_id=ada, provider=PROVIDER, provider_account_id=account.id,
            provider_customer_id="cus_1",
        )  # fmt: skip
    return tenant, account, ada, subscription


async def methods_of(client: Client, tenant: CreatedTenant, customer_id: int) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/customers/{customer_id}/payment-methods", headers=tenant.headers)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def events_of(worker: Runtime, tenant: CreatedTenant, object_type: str) -> list[tuple[str, int]]:
    """The tenant's events of ``object_type`` (from its table: ``GET /v1/events`` shows an event only
    once every transaction older than it has ended, which tests running beside this one delay)."""
    found = await rows(worker, tenant, "SELECT type, object_id FROM events WHERE object_type = :t", t=object_type)
    return sorted((row["type"], row["object_id"]) for row in found)


async def outcomes(worker: Runtime, tenant: CreatedTenant) -> dict[str, tuple[str, str | None]]:
    return {row["event_id"]: (row["status"], row["detail"]) for row in await stored(worker, tenant)}


async def test_a_method_attached_at_the_provider_is_learnt_changed_and_detached(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    tenant, account, ada, subscription = await with_provider_customer(client, admin_headers, accounts, worker, 861)
    await deliver(client, account, [event("evt_a", "payment_method.attached", CARD, T0, **method())])
    await drain(worker)
    [learnt] = await methods_of(client, tenant, ada)
    assert (learnt["provider_payment_method_id"], learnt["brand"], learnt["last4"]) == (CARD, "visa", "4242")
    assert (learnt["exp_month"], learnt["exp_year"], learnt["provider_account_id"]) == (12, 2030, account.id)
    assert learnt["is_default"] is False  # as at Stripe: attached is not made the default
    async with worker.database.tenant_session(tenant.schema) as session:  # a subscription charged with it
        await session.execute(text(f"UPDATE subscriptions SET payment_method_id = {learnt['id']}"))

    # A card updater renews the expiry; an older word, delivered late, changes nothing.
    renewed = method(exp_year=2033)
    await deliver(client, account, [event("evt_u", "payment_method.updated", CARD, T0 + timedelta(1), **renewed)])
    await deliver(
        client, account, [event("evt_old", "payment_method.updated", CARD, T0 + timedelta(hours=1), **method())]
    )
    await drain(worker)
    [renewed_view] = await methods_of(client, tenant, ada)
    assert renewed_view["exp_year"] == 2033

    detached = event("evt_d", "payment_method.detached", CARD, T0 + timedelta(2), **method(at=None))
    late_attach = event("evt_late", "payment_method.attached", CARD, T0 + timedelta(hours=2), **method())
    await deliver(client, account, [detached])
    await drain(worker)
    await deliver(client, account, [late_attach])
    await drain(worker)
    assert await methods_of(client, tenant, ada) == []
    shown = (await client.get(f"/v1/subscriptions/{subscription}", headers=tenant.headers)).json()
    assert shown["payment_method_id"] is None  # moved to the customer's default

    seen = await outcomes(worker, tenant)
    assert [seen[e][0] for e in ("evt_a", "evt_u", "evt_old", "evt_d", "evt_late")] == [
        "applied", "applied", "ignored", "applied", "ignored",
    ]  # fmt: skip
    assert seen["evt_late"][1] == "older than the last event applied to this payment method"
    assert await events_of(worker, tenant, "payment_method") == [
        ("payment_method.attached", learnt["id"]),
        ("payment_method.detached", learnt["id"]),
        ("payment_method.updated", learnt["id"]),
    ]
    assert ("subscription.updated", subscription) in await events_of(worker, tenant, "subscription")


async def test_an_attach_of_the_same_second_as_its_detach_is_older_news(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    """Stripe's timestamps are whole seconds and its deliveries come in any order; it never attaches
    a PaymentMethod it detached. Before, the attach delivered second attached it again."""
    tenant, account, ada, _ = await with_provider_customer(client, admin_headers, accounts, worker, 864)
    at = T0 + timedelta(1)
    await deliver(client, account, [event("evt_a", "payment_method.attached", CARD, T0, **method())])
    await drain(worker)
    await deliver(client, account, [event("evt_d", "payment_method.detached", CARD, at, **method(at=None))])
    await drain(worker)
    await deliver(client, account, [event("evt_a2", "payment_method.attached", CARD, at, **method())])
    await drain(worker)

    assert await methods_of(client, tenant, ada) == []
    assert (await outcomes(worker, tenant))["evt_a2"] == (
        "ignored",
        "detached in the same second: a detached payment method is not attached again",
    )


async def test_what_the_provider_reports_for_nobody_billplane_knows_changes_nothing(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    tenant, account, ada, _ = await with_provider_customer(client, admin_headers, accounts, worker, 862)
    await deliver(
        client,
        account,
        [
            event("evt_x", "payment_method.attached", CARD, T0, **method(at="cus_unknown")),
            event("evt_y", "payment_method.updated", "pm_other", T0, **method(provider_payment_method_id="pm_other")),
            event(
                "evt_z",
                "payment_method.detached",
                "pm_other",
                T0,
                **method(at=None, provider_payment_method_id="pm_other"),
            ),
            event("evt_n", "payment_method.attached", CARD, T0),
        ],
    )
    await drain(worker)
    assert await methods_of(client, tenant, ada) == []
    seen = await outcomes(worker, tenant)
    assert seen == {
        "evt_x": ("ignored", "no live local customer has this provider id at this account"),
        "evt_y": ("ignored", "no local payment method has this provider id at this account"),
        "evt_z": ("ignored", "no local payment method has this provider id at this account"),
        "evt_n": ("ignored", "the event carries no payment method"),
    }
    assert await events_of(worker, tenant, "payment_method") == []


async def test_a_method_of_another_customer_is_not_moved_by_the_providers_word(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    tenant, account, ada, _ = await with_provider_customer(client, admin_headers, accounts, worker, 863)
    await deliver(client, account, [event("evt_a", "payment_method.attached", CARD, T0, **method())])
    await drain(worker)
    async with worker.database.tenant_session(tenant.schema) as session:
        grace = await insert(session, "customers", name="Grace")
        await insert(
            session, "provider_customers", customer_id=grace, provider=PROVIDER, provider_account_id=account.id,
            provider_customer_id="cus_2",
        )  # fmt: skip
    moved = event("evt_m", "payment_method.attached", CARD, T0 + timedelta(1), **method(at="cus_2"))
    await deliver(client, account, [moved])
    await drain(worker)
    assert [m["provider_payment_method_id"] for m in await methods_of(client, tenant, ada)] == [CARD]
    assert await methods_of(client, tenant, grace) == []
    assert (await outcomes(worker, tenant))["evt_m"] == (
        "ignored", "the payment method is registered for another customer",
    )  # fmt: skip


async def test_a_providers_word_older_than_billplanes_own_detach_does_not_attach_it_again(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    tenant, account, ada, _ = await with_provider_customer(client, admin_headers, accounts, worker, 864)
    await deliver(client, account, [event("evt_a", "payment_method.attached", CARD, T0, **method())])
    await drain(worker)
    [learnt] = await methods_of(client, tenant, ada)
    url = f"/v1/customers/{ada}/payment-methods/{learnt['id']}"
    assert (await client.delete(url, headers=tenant.headers)).status_code == 204
    # Sent by the provider before the detach (it was still attached then), delivered after it.
    await deliver(client, account, [event("evt_b", "payment_method.updated", CARD, T0 + timedelta(1), **method())])
    await deliver(client, account, [event("evt_c", "payment_method.attached", CARD, T0 + timedelta(2), **method())])
    await drain(worker)
    assert await methods_of(client, tenant, ada) == []
    seen = await outcomes(worker, tenant)
    assert {seen["evt_b"][0], seen["evt_c"][0]} == {"ignored"}
