"""A payment whose charge gave up and whose provider account is gone (deleted in the moment
between the charge being queued and the deletion's check): billplane cannot ask the provider, so
the tenant is told, and settles it by hand."""

from __future__ import annotations

from billplane_sandbox.payment_methods import ANSWER_LOST

from billplane.provider_accounts.models import ProviderAccount
from billplane.provider_accounts.repository import ProviderAccountRepository
from billplane.runtime import Runtime
from tests.platform.dunning.helpers import Client, one
from tests.platform.dunning.stuck import INVOICE, PAYMENT, age, reconciliation, stuck_renewal


async def test_the_tenant_is_told_and_settles_it_by_hand(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    stuck = await stuck_renewal(client, admin_headers, worker, ANSWER_LOST)
    await age(worker, stuck)
    async with worker.database.control_session() as session:  # as DELETE leaves it, past its checks
        account = await session.get(ProviderAccount, stuck.setup.account)
        assert account is not None
        await ProviderAccountRepository(session, stuck.setup.tenant.id).mark_deleted(account)

    await reconciliation(worker).run()  # every tenant of the database: this one's payment tells

    payment = await one(worker, stuck.setup.tenant, PAYMENT)
    assert payment["status"] == "pending"
    assert "was deleted" in payment["action_required"]
    assert "/resolve" in payment["action_required"]
    body = {"outcome": "succeeded", "provider_payment_id": "sbx_pay_checked_by_hand"}
    resolved = await client.post(f"/v1/payments/{stuck.payment}/resolve", json=body, headers=stuck.setup.tenant.headers)
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["status"] == "succeeded"
    assert (await one(worker, stuck.setup.tenant, INVOICE))["status"] == "paid"
