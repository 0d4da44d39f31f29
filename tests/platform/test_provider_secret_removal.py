"""A removed webhook secret stops verifying at once; a rotated one verifies for a day (the grace).

End to end with the real Stripe plugin: the account is connected through the API against the fake
Stripe, and webhooks signed the way Stripe signs them are posted to the real inbound endpoint.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from billplane.runtime import Runtime
from tests.conftest import CreatedTenant, create_tenant
from tests.providers.stripe.conftest import WEBHOOK_SECRET
from tests.providers.stripe.conftest import fake_stripe as fake_stripe  # noqa: PLC0414 - a fixture, re-exported
from tests.providers.stripe.conftest import fake_stripe_server as fake_stripe_server  # noqa: PLC0414
from tests.providers.stripe.fake_stripe import events, objects
from tests.providers.stripe.test_platform_flow import connect
from tests.providers.stripe.test_platform_flow import worker as worker  # noqa: PLC0414

Client = AsyncTestClient[Litestar]
PATH = "/v1/provider-accounts"


def _secret() -> str:
    return "whsec_" + secrets.token_hex(16)


async def _connected(client: Client, admin_headers: dict[str, str]) -> tuple[CreatedTenant, int]:
    tenant = await create_tenant(client, admin_headers, "whremove")
    connected = await connect(client, tenant)  # webhook secret: WEBHOOK_SECRET
    assert connected.status_code == 201, connected.text
    return tenant, int(connected.json()["id"])


async def _delivered(client: Client, account_id: int, secret: str) -> int:
    """The status of a Stripe webhook signed with ``secret`` alone: 200 verified, 400 refused."""
    now = datetime.now(UTC)
    customer = objects.fixture("customer", id=objects.new_id("cus"))
    headers, body = events.sign(events.event("customer.updated", customer, created=int(now.timestamp())), [secret], now)
    response = await client.post(f"/v1/webhooks/stripe/{account_id}", content=body, headers=headers)
    assert response.status_code in {200, 400}, response.text
    return response.status_code


async def _patch(client: Client, tenant: CreatedTenant, account_id: int, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.patch(f"{PATH}/{account_id}", json=body, headers=tenant.headers)
    assert response.status_code == 200, response.text
    shown: dict[str, Any] = response.json()
    return shown


async def _previous(runtime: Runtime, account_id: int) -> tuple[bool, bool]:
    """Whether the row still holds a previous secret, and its expiry."""
    async with runtime.database.control_session() as session:
        row = (
            await session.execute(
                text(
                    "SELECT previous_webhook_secret_ciphertext IS NOT NULL, previous_webhook_secret_until IS NOT NULL "
                    "FROM control.provider_accounts WHERE id = :id"
                ),
                {"id": account_id},
            )
        ).one()
    return bool(row[0]), bool(row[1])


async def test_a_removed_webhook_secret_stops_verifying_at_once(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    tenant, account_id = await _connected(client, admin_headers)
    assert await _delivered(client, account_id, WEBHOOK_SECRET) == 200

    removed = await _patch(client, tenant, account_id, {"webhook_secret": None})

    assert (removed["webhook_secret_set"], removed["webhook_secret_hint"]) == (False, None)
    assert await _delivered(client, account_id, WEBHOOK_SECRET) == 400  # no day of grace for a removed secret
    assert await _previous(worker, account_id) == (False, False)


async def test_removing_a_rotated_secret_ends_the_grace_of_both(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    tenant, account_id = await _connected(client, admin_headers)
    rotated = _secret()
    await _patch(client, tenant, account_id, {"webhook_secret": rotated})
    assert await _delivered(client, account_id, WEBHOOK_SECRET) == 200  # the replaced one, within its day

    await _patch(client, tenant, account_id, {"webhook_secret": None})

    assert await _delivered(client, account_id, rotated) == 400
    assert await _delivered(client, account_id, WEBHOOK_SECRET) == 400
    assert await _previous(worker, account_id) == (False, False)

    # Removing, then setting a new secret: a rotation with no grace (a leaked secret's way out).
    fresh = _secret()
    await _patch(client, tenant, account_id, {"webhook_secret": fresh})
    assert await _delivered(client, account_id, fresh) == 200
    assert await _delivered(client, account_id, rotated) == 400
    assert await _previous(worker, account_id) == (False, False)


async def test_a_rotated_webhook_secret_still_verifies_within_the_grace(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    tenant, account_id = await _connected(client, admin_headers)
    rotated = _secret()

    shown = await _patch(client, tenant, account_id, {"webhook_secret": rotated})

    assert shown["webhook_secret_set"] is True
    assert await _delivered(client, account_id, rotated) == 200
    assert await _delivered(client, account_id, WEBHOOK_SECRET) == 200  # the provider may still sign with it
    assert await _delivered(client, account_id, _secret()) == 400
    assert await _previous(worker, account_id) == (True, True)
