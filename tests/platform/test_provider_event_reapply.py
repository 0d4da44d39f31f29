"""Applying an ignored provider event again, once its cause is gone (``POST
/v1/provider-events/{id}/reapply``, ``billplane provider-events reapply``).

An event the database refused, or that waited a day for what it needed, is ignored for good: a
``payment.succeeded`` lost so leaves its invoice open, and dunning charges again. Set back to
``received`` under its row's lock, it is applied by a job of its own like a new one, and waits a
day again from then, while ``received_at`` keeps when it arrived. Only an ``ignored`` event can
be: a ``received`` one is still to be applied, an ``applied`` one is done (409).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped, unused-ignore]  # asyncpg 0.32 ships no type hints
import msgspec
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text
from sqlalchemy.engine import make_url

from billplane.cli.main import cli
from billplane.plugins.contract import ProviderEvent
from billplane.runtime import Runtime
from billplane.webhooks.apply import _at
from tests.conftest import SECRET_KEY, CreatedTenant, create_tenant, unique_slug
from tests.platform.billing_seed import insert, their_provider_event
from tests.platform.concurrently import WAIT, held, in_thread
from tests.platform.invoices.helpers import rows
from tests.platform.sync_fakes import StaticAccounts, drain, wait_for_jobs
from tests.platform.test_webhooks import T0, Client, deliver, event, tenant_with_subscription

REFUSED = "could not be applied: check_violation (SQLSTATE 23514), constraint payments_not_yet of table payments"
WAITED = (
    "not applied after a day of waiting: the refunded payment is still pending here: check it and the refund at "
    "the provider"
)


def _path(event_id: int | str) -> str:
    return f"/v1/provider-events/{event_id}/reapply"


async def _event_id(runtime: Runtime, tenant: CreatedTenant, provider_event_id: str) -> int:
    [row] = await rows(runtime, tenant, "SELECT id FROM provider_events WHERE event_id = :e", e=provider_event_id)
    return int(row["id"])


async def _shown(client: Client, tenant: CreatedTenant, event_id: int) -> dict[str, Any]:
    response = await client.get(f"/v1/provider-events/{event_id}", headers=tenant.headers)
    assert response.status_code == 200, response.text
    shown: dict[str, Any] = response.json()
    return shown


async def _execute(runtime: Runtime, tenant: CreatedTenant, statement: str) -> None:
    async with runtime.database.tenant_session(tenant.schema) as session:
        await session.execute(text(statement))


async def _customer(runtime: Runtime, tenant: CreatedTenant) -> int:
    [row] = await rows(runtime, tenant, "SELECT id FROM customers")
    return int(row["id"])


async def _open_invoice_charged(runtime: Runtime, tenant: CreatedTenant, account: int) -> tuple[int, int]:
    """An open 1000 USD invoice of billplane's own and its pending charge ``pi_1`` at ``account``:
    (invoice id, payment id)."""
    customer = await _customer(runtime, tenant)
    async with runtime.database.tenant_session(tenant.schema) as session:
        invoice = await insert(
            session, "invoices", customer_id=customer, status="open", currency="USD", subtotal=1000, total=1000
        )
        payment = await insert(
            session, "payments", customer_id=customer, invoice_id=invoice, amount=1000, currency="USD",
            status="pending", provider="fake", provider_account_id=account, provider_payment_id="pi_1",
        )  # fmt: skip
    return invoice, payment


async def test_a_payment_the_database_refused_settles_its_invoice_once_reapplied(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    tenant, account, _ = await tenant_with_subscription(client, admin_headers, accounts, worker, 1701)
    invoice, payment = await _open_invoice_charged(worker, tenant, account.id)
    # A check the settlement fails, standing for a bug a later release fixes (the test's own, as
    # in test_provider_event_failures.py: any check of the models an event reaches is a bug).
    await _execute(worker, tenant, "ALTER TABLE payments ADD CONSTRAINT payments_not_yet CHECK (status <> 'succeeded')")
    paid = {"provider_payment_id": "pi_1", "status": "succeeded", "amount": 1000, "currency": "USD"}
    await deliver(client, account, [event("evt_1", "payment.succeeded", "pi_1", T0, payment=paid)])
    await drain(worker)
    event_id = await _event_id(worker, tenant, "evt_1")
    ignored = await _shown(client, tenant, event_id)
    assert (ignored["status"], ignored["detail"], ignored["reapplied_at"]) == ("ignored", REFUSED, None)
    [open_invoice] = await rows(worker, tenant, "SELECT status, amount_paid FROM invoices")
    assert open_invoice == {"status": "open", "amount_paid": 0}

    await _execute(worker, tenant, "ALTER TABLE payments DROP CONSTRAINT payments_not_yet")  # the fix
    reapplied = await client.post(_path(event_id), headers=tenant.headers)

    assert reapplied.status_code == 202, reapplied.text
    shown = reapplied.json()
    assert shown == await _shown(client, tenant, event_id)
    assert (shown["status"], shown["applied_at"]) == ("received", None)
    assert shown["detail"] == f"reapplied through the API (key {tenant.key_id}); it was ignored: {REFUSED}"
    assert shown["received_at"] == ignored["received_at"]  # when it arrived, still
    assert datetime.fromisoformat(shown["reapplied_at"]) > datetime.fromisoformat(ignored["applied_at"])
    # Its own job, as a new event's: no sweep needed.
    [job] = await wait_for_jobs(worker, 1)
    assert (job["task"], job["event_id"], job["schema"]) == ("billplane.apply_event", event_id, tenant.schema)
    await drain(worker, sweep=False)

    applied = await _shown(client, tenant, event_id)
    assert (applied["status"], applied["detail"]) == ("applied", shown["detail"])  # the detail keeps the story
    assert applied["reapplied_at"] == shown["reapplied_at"]
    assert await rows(worker, tenant, "SELECT status, amount_paid FROM invoices") == [
        {"status": "paid", "amount_paid": 1000}
    ]
    assert await rows(worker, tenant, "SELECT id, status FROM payments") == [{"id": payment, "status": "succeeded"}]
    emitted = await rows(worker, tenant, "SELECT object_type, object_id, type FROM events ORDER BY id")
    assert [(row["object_type"], row["object_id"], row["type"]) for row in emitted] == [
        ("payment", payment, "payment.succeeded"),
        ("invoice", invoice, "invoice.paid"),
    ]


async def test_a_reapplied_event_waits_a_day_again_from_the_reapply(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    """A refund of a payment still pending waits for it, up to a day since it arrived; reapplied
    while the payment is still pending, it waits again (a day since the reapply), and is counted
    once the payment settles (here by hand)."""
    tenant, account, _ = await tenant_with_subscription(client, admin_headers, accounts, worker, 1702)
    async with worker.database.tenant_session(tenant.schema) as session:
        await insert(
            session, "payments", customer_id=await session.scalar(text("SELECT id FROM customers")), amount=1000,
            currency="USD", status="pending", provider="fake", provider_account_id=account.id,
            provider_payment_id="pi_7",
        )  # fmt: skip
    refund = {"provider_refund_id": "re_1", "status": "succeeded", "provider_payment_id": "pi_7", "amount": 300}
    await deliver(client, account, [event("evt_1", "refund.updated", "re_1", T0, refund=refund | {"currency": "USD"})])
    await _execute(worker, tenant, "UPDATE provider_events SET received_at = now() - interval '25 hours'")
    await drain(worker)
    event_id = await _event_id(worker, tenant, "evt_1")
    assert ((await _shown(client, tenant, event_id))["detail"]) == WAITED

    assert (await client.post(_path(event_id), headers=tenant.headers)).status_code == 202
    await drain(worker)  # the payment is still pending: it waits, a day from the reapply
    waiting = await _shown(client, tenant, event_id)
    assert (waiting["status"], waiting["applied_at"]) == ("received", None)

    await _execute(worker, tenant, "UPDATE payments SET status = 'succeeded'")  # settled by hand
    await drain(worker)
    assert (await _shown(client, tenant, event_id))["status"] == "applied"
    assert await rows(worker, tenant, "SELECT refunded_amount FROM payments") == [{"refunded_amount": 300}]
    assert await rows(worker, tenant, "SELECT amount, provider_refund_id FROM refunds") == [
        {"amount": 300, "provider_refund_id": "re_1"}
    ]


async def test_a_stored_event_this_billplane_cannot_read_waits_a_day_then_is_ignored(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    """One stored by a newer billplane (a rolling upgrade) waits for a worker that reads it, then is
    ignored, naming the field at fault and never its value. Its job raised before, at every sweep,
    for ever (the event stayed received)."""
    tenant = await create_tenant(client, admin_headers, "reap")
    event_id = int(await their_provider_event(client, tenant))  # stored without occurred_at
    assert (await client.post(_path(event_id), headers=tenant.headers)).status_code == 202
    await drain(worker)
    assert (await _shown(client, tenant, event_id))["status"] == "received"

    await _execute(worker, tenant, "UPDATE provider_events SET reapplied_at = now() - interval '25 hours'")
    await drain(worker)
    shown = await _shown(client, tenant, event_id)
    assert (shown["status"], shown["detail"]) == (
        "ignored",
        "not applied after a day of waiting: this billplane cannot read the stored event ($.occurred_at)",
    )


async def test_a_received_or_applied_event_is_not_reapplied(
    client: Client, admin_headers: dict[str, str], accounts: StaticAccounts, worker: Runtime
) -> None:
    tenant, account, _ = await tenant_with_subscription(client, admin_headers, accounts, worker, 1703)
    # A renewal the provider collected for the subscription: recorded as a new payment.
    renewal = {"provider_payment_id": "pi_2", "status": "succeeded", "amount": 1500, "currency": "USD"}
    renewal |= {"provider_subscription_id": "sub_1"}
    await deliver(client, account, [event("evt_1", "payment.succeeded", "pi_2", T0, payment=renewal)])
    event_id = await _event_id(worker, tenant, "evt_1")

    received = await _shown(client, tenant, event_id)
    refused = await client.post(_path(event_id), headers=tenant.headers)
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == "conflict"
    assert "received" in refused.json()["detail"]
    assert await _shown(client, tenant, event_id) == received

    await drain(worker)
    applied = await _shown(client, tenant, event_id)
    assert applied["status"] == "applied"
    again = await client.post(_path(event_id), headers=tenant.headers)
    assert again.status_code == 409, again.text
    assert "applied" in again.json()["detail"]
    await drain(worker)
    assert await _shown(client, tenant, event_id) == applied
    assert await rows(worker, tenant, "SELECT amount, status FROM payments") == [
        {"amount": 1500, "status": "succeeded"}
    ]


async def test_another_tenants_event_and_an_unknown_one_are_404(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    mine = await create_tenant(client, admin_headers, "reap")
    theirs = await create_tenant(client, admin_headers, "reap")
    their_event = int(await their_provider_event(client, theirs))
    before = await rows(runtime, theirs, "SELECT * FROM provider_events")

    for event_id in (their_event, 999_999, 2**63):
        response = await client.post(_path(event_id), headers=mine.headers)
        assert response.status_code == 404, response.text
        assert response.json()["code"] == "not_found"
    assert await rows(runtime, theirs, "SELECT * FROM provider_events") == before
    assert (await client.post(_path(their_event), headers=theirs.headers)).status_code == 202


async def test_a_key_that_only_reads_provider_events_cannot_reapply(
    client: Client, admin_headers: dict[str, str]
) -> None:
    tenant = await create_tenant(client, admin_headers, "reap")
    event_id = await their_provider_event(client, tenant)
    issued = await client.post(
        f"/v1/admin/tenants/{tenant.slug}/api-keys", json={"scopes": ["provider-events:read"]}, headers=admin_headers
    )
    reader = {"Authorization": f"Bearer {issued.json()['key']}"}

    refused = await client.post(_path(event_id), headers=reader)

    assert refused.status_code == 403, refused.text
    assert refused.json()["detail"] == "this API key's scopes do not allow provider-events:write"
    assert (await _shown(client, tenant, int(event_id)))["status"] == "ignored"


async def test_two_reapplies_at_once_reapply_it_once(
    client: Client, admin_headers: dict[str, str], database_url: str
) -> None:
    tenant = await create_tenant(client, admin_headers, "reap")
    event_id = int(await their_provider_event(client, tenant))
    # Both wait on the row's lock; the second then finds it received.
    async with held(database_url, tenant.schema, f"SELECT 1 FROM provider_events WHERE id = {event_id} FOR UPDATE"):
        both = [in_thread(client.post(_path(event_id), headers=tenant.headers)) for _ in range(2)]
        await asyncio.sleep(WAIT)
    answers = await asyncio.gather(*both)

    assert sorted(answer.status_code for answer in answers) == [202, 409]
    shown = await _shown(client, tenant, event_id)
    assert shown["status"] == "received"
    assert shown["detail"].count("reapplied") == 1


# The operator's command.

Invoke = Callable[..., Result]


@pytest.fixture
def run(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    monkeypatch.setenv("BILLPLANE_DATABASE_URL", database_url)
    monkeypatch.setenv("BILLPLANE_SECRET_KEY", SECRET_KEY)
    monkeypatch.delenv("BILLPLANE_ADMIN_KEY", raising=False)

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, list(args))

    return invoke


def _sql(database_url: str, statement: str) -> list[tuple[Any, ...]]:
    async def execute() -> list[tuple[Any, ...]]:
        url = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
        connection = await asyncpg.connect(url)
        try:
            return [tuple(row) for row in await connection.fetch(statement)]
        finally:
            await connection.close()

    return asyncio.run(execute())


def test_the_operator_reapplies_an_ignored_event(run: Invoke, database_url: str) -> None:
    slug = unique_slug("reap")
    assert run("tenants", "create", slug).exit_code == 0
    schema = f"tenant_{slug}"
    body = json.dumps({"event_id": "evt_1", "type": "customer.updated"})
    [(event_id,)] = _sql(
        database_url,
        f"INSERT INTO {schema}.provider_events (provider, provider_account_id, event_id, type, provider_object_id, "
        f"occurred_at, raw_body, event, status, detail, applied_at) VALUES ('sandbox', 1, 'evt_1', 'customer.updated', "
        f"'cus_1', now(), 'x', '{body}'::jsonb, 'ignored', 'could not be applied: SQLSTATE 22000', now()) RETURNING id",
    )

    reapplied = run("provider-events", "reapply", "--tenant", slug, str(event_id))

    assert reapplied.exit_code == 0, reapplied.output
    assert f"provider event {event_id} of {slug} is received again" in reapplied.output
    [(status, detail, applied_at, reapplied_at)] = _sql(
        database_url, f"SELECT status, detail, applied_at, reapplied_at FROM {schema}.provider_events"
    )
    assert (status, applied_at) == ("received", None)
    assert detail == "reapplied by the operator; it was ignored: could not be applied: SQLSTATE 22000"
    assert reapplied_at is not None
    # Its own job, as a new event's: queued when the command's transaction committed.
    jobs = _sql(
        database_url,
        "SELECT (args->>'event_id')::bigint FROM billplane_jobs.procrastinate_jobs "
        f"WHERE task_name = 'billplane.apply_event' AND status = 'todo' AND args->>'schema' = '{schema}'",
    )
    assert jobs == [(event_id,)]

    again = run("provider-events", "reapply", "--tenant", slug, str(event_id))
    assert again.exit_code == 1
    assert "received" in again.output
    unknown = run("provider-events", "reapply", "--tenant", slug, "999999")
    assert unknown.exit_code == 1
    assert f"tenant {slug}: no provider event 999999" in unknown.output
    nobody = run("provider-events", "reapply", "--tenant", unique_slug("none"), str(event_id))
    assert nobody.exit_code == 1
    assert "no tenant" in nobody.output


def test_an_unreadable_event_is_told_by_its_field_never_its_value() -> None:
    with pytest.raises(msgspec.ValidationError) as caught:
        msgspec.convert({"event_id": "evt_1", "type": "ada@example.com"}, ProviderEvent)
    assert "ada@example.com" in str(caught.value)  # msgspec's own words quote it
    assert _at(caught.value) == "$.type holds a value of another type or form"
