"""A refund a provider reports with a currency that is not an ISO 4217 code is ignored with a reason,
as a payment's is (``money_events._record_payment``): stored, it would fail the refunds table's
check and stall the account's event job."""

from __future__ import annotations

from typing import Any

from billplane.runtime import Runtime
from tests.platform.sync_fakes import StaticAccounts, drain
from tests.platform.test_provider_billing_events import paid_at_provider, rows
from tests.platform.test_webhooks import T0, Client, deliver, event, stored, tenant_with_subscription


def _refund(refund_id: str, amount: int, currency: str) -> dict[str, Any]:
    body = {"provider_refund_id": refund_id, "status": "succeeded", "provider_payment_id": "pi_7", "amount": amount}
    return {"refund": body | {"currency": currency}}


async def test_a_refund_in_no_iso_currency_is_ignored_and_the_events_after_it_are_applied(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    tenant, account, _ = await tenant_with_subscription(client, admin_headers, accounts, worker, 610)
    await paid_at_provider(worker, tenant, account.id)

    bad = event("evt_1", "refund.updated", "re_1", T0, **_refund("re_1", 400, "usd"))
    good = event("evt_2", "refund.updated", "re_2", T0, **_refund("re_2", 300, "USD"))
    await deliver(client, account, [bad, good])
    await drain(worker)

    assert await rows(worker, tenant, "SELECT provider_refund_id, amount, currency FROM refunds") == [
        {"provider_refund_id": "re_2", "amount": 300, "currency": "USD"}
    ]
    assert await rows(worker, tenant, "SELECT refunded_amount FROM payments") == [{"refunded_amount": 300}]
    outcomes = {row["event_id"]: (row["status"], row["detail"]) for row in await stored(worker, tenant)}
    assert outcomes["evt_1"] == ("ignored", "the refund's currency 'usd' is not an ISO 4217 code")
    assert outcomes["evt_2"] == ("applied", None)
