"""A tenant, or a provider account, is not deleted while a subscription's cancellation is on its
way to Stripe.

Canceled in billplane, a subscription Stripe bills stays active at Stripe until the queued
`subscription.cancel` row is sent. Deleting the tenant dropped that row with its schema (and
deleting the account left it nothing to go through): Stripe went on charging the customer, and
nothing in billplane could stop it any more.
"""

from __future__ import annotations

from billplane.runtime import Runtime
from billplane.sync.unsent import UNSENT_CHANGES
from tests.conftest import CreatedTenant, create_tenant
from tests.platform.sync_fakes import drain
from tests.providers.stripe.fake_stripe.server import FakeStripe
from tests.providers.stripe.test_platform_flow import Client, connect, mirrored_to_stripe
from tests.providers.stripe.test_platform_flow import worker as worker  # noqa: PLC0414 - the fixture


async def canceled_at_billplane_only(client: Client, tenant: CreatedTenant, runtime: Runtime) -> tuple[int, int, str]:
    """A subscription at Stripe, canceled in billplane, its cancellation still queued:
    (subscription, its account, its Stripe id)."""
    assert (await connect(client, tenant)).status_code == 201
    subscription = await mirrored_to_stripe(client, runtime, tenant, quantity=3)
    shown = (await client.get(f"/v1/subscriptions/{subscription}", headers=tenant.headers)).json()
    canceled = await client.post(f"/v1/subscriptions/{subscription}/cancel", json={}, headers=tenant.headers)
    assert (canceled.status_code, canceled.json()["status"]) == (200, "canceled"), canceled.text
    return subscription, shown["provider_account_id"], shown["provider_subscription_id"]


async def test_a_tenant_waits_for_its_cancellations_to_reach_stripe(
    client: Client, admin_headers: dict[str, str], worker: Runtime, fake_stripe: FakeStripe
) -> None:
    tenant = await create_tenant(client, admin_headers, "delqueued")
    _, _, at_stripe = await canceled_at_billplane_only(client, tenant, worker)

    refused = await client.delete(f"/v1/admin/tenants/{tenant.slug}", headers=admin_headers)
    assert refused.status_code == 409, refused.text
    assert UNSENT_CHANGES in refused.json()["detail"]
    await drain(worker)  # the cancellation reaches Stripe
    assert fake_stripe.store.subscriptions[at_stripe]["status"] == "canceled"
    assert (await client.delete(f"/v1/admin/tenants/{tenant.slug}", headers=admin_headers)).status_code == 204


async def test_an_account_waits_for_the_cancellations_sent_through_it(
    client: Client, admin_headers: dict[str, str], worker: Runtime, fake_stripe: FakeStripe
) -> None:
    tenant = await create_tenant(client, admin_headers, "delqueuedacct")
    _, account, at_stripe = await canceled_at_billplane_only(client, tenant, worker)

    refused = await client.delete(f"/v1/provider-accounts/{account}", headers=tenant.headers)
    assert refused.status_code == 409, refused.text
    assert UNSENT_CHANGES in refused.json()["detail"]
    await drain(worker)
    assert fake_stripe.store.subscriptions[at_stripe]["status"] == "canceled"
    assert (await client.delete(f"/v1/provider-accounts/{account}", headers=tenant.headers)).status_code == 204


async def test_a_metadata_edit_still_queued_does_not_hold_back_a_deletion(
    client: Client, admin_headers: dict[str, str], worker: Runtime, fake_stripe: FakeStripe
) -> None:
    tenant = await create_tenant(client, admin_headers, "delmeta")
    subscription, account, _ = await canceled_at_billplane_only(client, tenant, worker)
    await drain(worker)  # the cancellation reaches Stripe
    edited = await client.patch(
        f"/v1/subscriptions/{subscription}", json={"metadata": {"note": "closed"}}, headers=tenant.headers
    )
    assert (edited.status_code, edited.json()["sync_status"]) == (200, "pending"), edited.text

    # Stripe bills the same without it: nothing is left to wait for.
    assert (await client.delete(f"/v1/provider-accounts/{account}", headers=tenant.headers)).status_code == 204
    assert (await client.delete(f"/v1/admin/tenants/{tenant.slug}", headers=admin_headers)).status_code == 204
