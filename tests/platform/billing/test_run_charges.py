"""Which account and payment method a billing run charges each new invoice through, and why an
invoice it cannot charge stays open: the subscription's account, else the tenant's default one;
the subscription's payment method, else the customer's newest default at that account."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from billplane_sandbox.payment_methods import SUCCEEDS
from sqlalchemy import text

from billplane.billing.run import BillingRun
from billplane.runtime import Runtime
from tests.conftest import CreatedTenant, create_tenant
from tests.platform.billing.test_billing_run import DAY, Client, subscribe
from tests.platform.billing_seed import insert
from tests.platform.invoices.helpers import connect_sandbox, customer, payment_method, rows


async def daily_plan(runtime: Runtime, tenant: CreatedTenant) -> int:
    async with runtime.database.tenant_session(tenant.schema) as session:
        product = await insert(session, "products", name="API")
        return await insert(
            session, "plans", product_id=product, name="Seats", pricing_model="per_seat", amount=100,
            currency="USD", billing_interval="day",
        )  # fmt: skip


async def test_each_invoice_is_charged_through_the_subscriptions_terms_or_the_defaults(
    client: Client, admin_headers: dict[str, str], runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    tenant = await create_tenant(client, admin_headers, "terms")
    default_account = await connect_sandbox(client, tenant)  # the tenant's first: its default
    other_account = await connect_sandbox(client, tenant)
    gone_account = await connect_sandbox(client, tenant)
    assert (await client.delete(f"/v1/provider-accounts/{gone_account}", headers=tenant.headers)).status_code == 204
    plan = await daily_plan(runtime, tenant)
    names = ["defaults", "named", "elsewhere", "detached", "other", "gone", "none"]
    people = {name: await customer(client, tenant, name) for name in names}
    # (customer, account, default): the run charges nothing itself, so the tokens only need to differ.
    stored = {
        "older": ("defaults", default_account, True),
        "newest": ("defaults", default_account, True),
        "named": ("named", default_account, False),
        "elsewhere": ("elsewhere", other_account, True),
        "detached": ("detached", default_account, True),
        "other": ("other", other_account, True),
    }
    method = {
        key: await payment_method(runtime, tenant, people[who], account, f"{SUCCEEDS}_{key}", default=default)
        for key, (who, account, default) in stored.items()
    }
    async with runtime.database.tenant_session(tenant.schema) as session:
        await session.execute(
            text("UPDATE payment_methods SET detached_at = now() WHERE id = :id"),
            {"id": method["detached"]},
        )
    now = datetime.now(UTC)
    due = {"current_period_start": now - 1.5 * DAY, "current_period_end": now - 0.5 * DAY, "quantity": 1}
    terms = {
        "defaults": {},
        "named": {"payment_method_id": method["named"]},
        "elsewhere": {"payment_method_id": method["elsewhere"]},  # at another account than the default
        "detached": {"payment_method_id": method["detached"]},
        "other": {"provider_account_id": other_account},
        "gone": {"provider_account_id": gone_account},
        "none": {},  # no payment method at all
    }
    subscriptions = {name: await subscribe(runtime, tenant, plan, people[name], **due, **terms[name]) for name in names}

    with caplog.at_level(logging.INFO, logger="billplane.billing"):
        await BillingRun(runtime.database, runtime.accounts).run()

    charged = await rows(
        runtime, tenant,
        "SELECT i.subscription_id, p.provider_account_id, p.metadata, p.amount, p.status FROM payments p "
        "JOIN invoices i ON i.id = p.invoice_id",
    )  # fmt: skip
    by_subscription = {row["subscription_id"]: row for row in charged}
    expected = {
        "defaults": (default_account, method["newest"]),
        "named": (default_account, method["named"]),
        "other": (other_account, method["other"]),
    }
    assert set(by_subscription) == {subscriptions[name] for name in expected}
    for name, (account, payment_method_id) in expected.items():
        row = by_subscription[subscriptions[name]]
        assert (row["provider_account_id"], row["metadata"]) == (account, {"payment_method_id": str(payment_method_id)})
        assert (row["amount"], row["status"]) == (100, "pending")
    outbox = await rows(
        runtime, tenant, "SELECT object_id, provider_account_id FROM outbox WHERE kind = 'payment.charge'"
    )
    assert sorted((row["object_id"], row["provider_account_id"]) for row in outbox) == sorted(
        (row["id"], row["provider_account_id"]) for row in await rows(runtime, tenant, "SELECT * FROM payments")
    )

    invoices = {row["subscription_id"]: row for row in await rows(runtime, tenant, "SELECT * FROM invoices")}
    assert {name for name in names if invoices[subscriptions[name]]["status"] == "open"} == set(names)
    reasons = {
        "elsewhere": f"is at provider account {other_account}; this invoice is charged through account "
        f"{default_account}",
        "detached": "is not an attached payment method of the customer",
        "gone": f"provider account {gone_account} no longer exists",
        "none": f"the customer has no default payment method at provider account {default_account}",
    }
    logged = [record.getMessage() for record in caplog.records if "stays open" in record.getMessage()]
    for name, reason in reasons.items():
        invoice = invoices[subscriptions[name]]["id"]
        assert [message for message in logged if f"invoice {invoice} of" in message and reason in message], name


async def test_a_tenant_without_a_provider_account_has_its_invoices_left_open(
    client: Client, admin_headers: dict[str, str], runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    tenant = await create_tenant(client, admin_headers, "noacct")
    plan = await daily_plan(runtime, tenant)
    now = datetime.now(UTC)
    await subscribe(
        runtime, tenant, plan, await customer(client, tenant),
        current_period_start=now - 1.5 * DAY, current_period_end=now - 0.5 * DAY,
    )  # fmt: skip

    with caplog.at_level(logging.INFO, logger="billplane.billing"):
        await BillingRun(runtime.database, runtime.accounts).run()

    [invoice] = await rows(runtime, tenant, "SELECT id, status FROM invoices")
    assert invoice["status"] == "open"
    assert await rows(runtime, tenant, "SELECT id FROM payments") == []
    assert any(
        f"invoice {invoice['id']} of" in record.getMessage()
        and "no provider account to charge through" in record.getMessage()
        for record in caplog.records
    )
