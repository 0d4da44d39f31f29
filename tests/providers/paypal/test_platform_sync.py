"""A manual sync of a subscription whose PayPal create gave up, end to end against the fake PayPal.

PayPal cannot list or search subscriptions, so a create whose every answer was lost cannot be
looked up; its ``PayPal-Request-Id`` can be sent again. The sync's new outbox row has a new key,
but the adapter sends one request id per billplane subscription, so PayPal answers with the
subscription the first call made instead of making a second one the customer could approve too.
"""

from __future__ import annotations

from billplane.runtime import Runtime
from tests.conftest import create_tenant
from tests.platform.sync_fakes import drain
from tests.providers.paypal.fake_paypal import FakePayPal
from tests.providers.paypal.test_platform_flow import Client, connect, seed

_CREATE = "/v1/billing/subscriptions"


async def test_a_sync_after_a_create_that_gave_up_shows_the_paypal_subscription_it_made_not_a_second(
    client: Client, admin_headers: dict[str, str], worker: Runtime, paypal: FakePayPal
) -> None:
    tenant = await create_tenant(client, admin_headers, "paypalresync")
    assert (await connect(client, tenant)).status_code == 201
    subscription = await seed(worker, tenant, "per_seat")
    url = f"/v1/subscriptions/{subscription}"
    before = set(paypal.subscriptions)
    # PayPal makes the subscription at the first call; no answer of any attempt reaches billplane.
    for _ in range(worker.sync_options.max_attempts):
        paypal.lose_next_answer(_CREATE)
    await client.post(f"{url}/sync", headers=tenant.headers)
    await drain(worker)
    gave_up = (await client.get(url, headers=tenant.headers)).json()
    assert (gave_up["sync_status"], gave_up["provider_subscription_id"]) == ("failed", None)
    [made] = set(paypal.subscriptions) - before

    assert (await client.post(f"{url}/sync", headers=tenant.headers)).status_code == 202
    await drain(worker)

    # Before: a second PayPal subscription, with its own approve link, for the same billplane one.
    assert set(paypal.subscriptions) - before == {made}
    shown = (await client.get(url, headers=tenant.headers)).json()
    assert (shown["sync_status"], shown["provider_subscription_id"], shown["status"]) == ("synced", made, "incomplete")
    approve = next(link for link in paypal.subscriptions[made]["links"] if link["rel"] == "approve")
    assert shown["next_action"] == {"type": "redirect", "url": approve["href"]}
