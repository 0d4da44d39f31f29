"""Manual invoices: drafts and their lines, every allowed and refused transition, and their events."""

from __future__ import annotations

from typing import Any

from billplane_sandbox import payment_methods

from billplane.runtime import Runtime
from tests.conftest import CreatedTenant, create_tenant
from tests.platform.invoices.helpers import (
    Client,
    act,
    connect_sandbox,
    customer,
    draft,
    event_types,
    payment_method,
    rows,
)
from tests.platform.sync_fakes import clear_jobs, drain

STATES = ("draft", "open", "paid", "void", "uncollectible")
ACTIONS = ("finalize", "pay", "void", "mark-uncollectible")
# Written out here, not imported: the state table of docs/concepts/invoices.md.
ALLOWED = {
    ("finalize", "draft"): "open",
    ("pay", "open"): "paid",
    ("pay", "uncollectible"): "paid",
    ("void", "open"): "void",
    ("void", "uncollectible"): "void",
    ("mark-uncollectible", "open"): "uncollectible",
}


async def test_a_draft_with_lines_computes_amounts_half_even(client: Client, admin_headers: dict[str, str]) -> None:
    tenant = await create_tenant(client, admin_headers, "inv")
    ada = await customer(client, tenant)
    body = {
        "customer_id": ada,
        "currency": "usd",
        "metadata": {"order": "42"},
        "lines": [
            {"description": "Workshop", "quantity": 2, "unit_amount": 15000},
            # 0.5 x 5 = 2.5 -> 2 and 0.5 x 7 = 3.5 -> 4: half-even, once, at the line.
            {"description": "API calls", "quantity": 5, "unit_amount_decimal": "0.5"},
            {"description": "More API calls", "quantity": 7, "unit_amount_decimal": "0.5"},
        ],
    }
    created = await client.post("/v1/invoices", json=body, headers=tenant.headers)
    assert created.status_code == 201, created.text
    invoice = created.json()
    assert (invoice["status"], invoice["number"], invoice["currency"], invoice["billing_reason"]) == (
        "draft",
        None,
        "USD",
        "manual",
    )
    assert [line["amount"] for line in invoice["lines"]] == [30000, 2, 4]
    assert [line["unit_amount_decimal"] for line in invoice["lines"]] == ["15000", "0.5", "0.5"]
    assert (invoice["subtotal"], invoice["total"], invoice["amount_due"], invoice["metadata"]) == (
        30006,
        30006,
        30006,
        {"order": "42"},
    )

    added = await act(
        client, tenant, invoice["id"], "lines", lines=[{"description": "Setup", "quantity": 3, "unit_amount": 100}]
    )
    assert added.status_code == 200, added.text
    assert (added.json()["total"], len(added.json()["lines"])) == (30306, 4)
    shown = (await client.get(f"/v1/invoices/{invoice['id']}", headers=tenant.headers)).json()
    assert shown == added.json()


async def test_bad_drafts_are_422_and_write_nothing(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    tenant, other = await create_tenant(client, admin_headers, "inv"), await create_tenant(client, admin_headers, "inv")
    ada, theirs = await customer(client, tenant), await customer(client, other, "Theirs")
    line = {"description": "x", "unit_amount": 1}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"customer_id": theirs + 1000, "currency": "USD", "lines": [line]}, "customer_id"),
        ({"customer_id": ada, "currency": "XYZ", "lines": [line]}, "currency"),
        ({"customer_id": ada, "currency": "USD", "lines": [{"description": "x"}]}, "lines[0].unit_amount"),
        (
            {"customer_id": ada, "currency": "USD", "lines": [line | {"unit_amount_decimal": "1"}]},
            "lines[0].unit_amount",
        ),
        ({"customer_id": ada, "currency": "USD", "lines": [line | {"quantity": 0}]}, "lines[0].quantity"),
        ({"customer_id": ada, "currency": "USD", "lines": [line | {"unit_amount": -1}]}, "lines[0].unit_amount"),
        (
            {"customer_id": ada, "currency": "USD", "lines": [line | {"quantity": 10**9, "unit_amount": 10**6}]},
            "lines[0].quantity",
        ),
        (
            {
                "customer_id": ada,
                "currency": "USD",
                "lines": [line | {"period_start": "2026-02-01T00:00:00Z", "period_end": "2026-01-01T00:00:00Z"}],
            },
            "lines[0].period_end",
        ),
    ]
    if theirs != ada:  # the other tenant's customer id, which this tenant does not have
        cases.append(({"customer_id": theirs, "currency": "USD"}, "customer_id"))
    for body, field in cases:
        response = await client.post("/v1/invoices", json=body, headers=tenant.headers)
        assert response.status_code == 422, (body, response.text)
        assert field in {error["field"] for error in response.json()["errors"]}, (body, response.text)
    assert await rows(runtime, tenant, "SELECT id FROM invoices") == []
    assert await rows(runtime, tenant, "SELECT id FROM events WHERE object_type = 'invoice'") == []

    invoice = await draft(client, tenant, ada, 100)
    empty = await act(client, tenant, invoice["id"], "lines", lines=[])
    assert (empty.status_code, empty.json()["errors"][0]["field"]) == (422, "lines")
    await act(client, tenant, invoice["id"], "finalize")
    late = await act(client, tenant, invoice["id"], "lines", lines=[line])
    assert late.status_code == 409, late.text
    assert (await client.get(f"/v1/invoices/{invoice['id']}", headers=tenant.headers)).json()["total"] == 100


async def _invoice_in(
    client: Client, runtime: Runtime, tenant: CreatedTenant, customer_id: int, state: str
) -> dict[str, Any]:
    """An invoice of 1000 brought to ``state`` through the API alone."""
    invoice = await draft(client, tenant, customer_id, 1000)
    if state != "draft":
        assert (await act(client, tenant, invoice["id"], "finalize")).status_code == 200
    action = {"paid": "pay", "void": "void", "uncollectible": "mark-uncollectible"}.get(state)
    if action is not None:
        assert (await act(client, tenant, invoice["id"], action)).status_code in {200, 202}
        await drain(runtime)
    shown: dict[str, Any] = (await client.get(f"/v1/invoices/{invoice['id']}", headers=tenant.headers)).json()
    assert shown["status"] == state
    return shown


async def test_every_transition_is_allowed_or_refused_with_409(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    await clear_jobs(runtime)
    tenant = await create_tenant(client, admin_headers, "inv")
    account = await connect_sandbox(client, tenant)
    ada = await customer(client, tenant)
    await payment_method(runtime, tenant, ada, account, payment_methods.SUCCEEDS)
    for state in STATES:
        for action in ACTIONS:
            invoice = await _invoice_in(client, runtime, tenant, ada, state)
            response = await act(client, tenant, invoice["id"], action)
            await drain(runtime)
            after = (await client.get(f"/v1/invoices/{invoice['id']}", headers=tenant.headers)).json()
            expected = ALLOWED.get((action, state))
            if expected is None:
                assert response.status_code == 409, (action, state, response.text)
                assert state in response.json()["detail"], (action, state)
                assert after == invoice, (action, state)  # nothing changed
            else:
                assert response.status_code in {200, 202}, (action, state, response.text)
                assert after["status"] == expected, (action, state)


async def test_finalize_numbers_and_dates_void_and_the_events_of_each_change(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers, "inv")
    ada = await customer(client, tenant)
    first, second, free = (
        await draft(client, tenant, ada, 500),
        await draft(client, tenant, ada, 700),
        await draft(client, tenant, ada),
    )
    finalized = (await act(client, tenant, second["id"], "finalize", days_until_due=14)).json()
    assert (finalized["status"], finalized["number"]) == ("open", "INV-1")
    assert finalized["finalized_at"] is not None
    [gap] = await rows(
        runtime, tenant, "SELECT extract(epoch FROM due_at - finalized_at) AS seconds FROM invoices WHERE id = :id",
        id=second["id"],
    )  # fmt: skip
    assert gap["seconds"] == 14 * 86400
    assert (await act(client, tenant, first["id"], "finalize")).json()["number"] == "INV-2"
    # Nothing to collect: paid as soon as it is finalized, and it still takes its number.
    zero = (await act(client, tenant, free["id"], "finalize")).json()
    assert (zero["status"], zero["number"], zero["amount_due"]) == ("paid", "INV-3", 0)
    assert zero["paid_at"] is not None

    voided = (await act(client, tenant, second["id"], "void")).json()
    assert voided["status"] == "void"
    assert voided["voided_at"] is not None
    uncollectible = (await act(client, tenant, first["id"], "mark-uncollectible")).json()
    assert uncollectible["status"] == "uncollectible"

    assert await event_types(runtime, tenant, "invoice", second["id"]) == [
        "invoice.created",
        "invoice.finalized",
        "invoice.voided",
    ]
    assert await event_types(runtime, tenant, "invoice", first["id"]) == [
        "invoice.created",
        "invoice.finalized",
        "invoice.marked_uncollectible",
    ]
    assert await event_types(runtime, tenant, "invoice", free["id"]) == [
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
    ]
    [event] = await rows(
        runtime, tenant, "SELECT data FROM events WHERE object_id = :id AND type = 'invoice.voided'", id=second["id"]
    )
    assert (event["data"]["status"], event["data"]["number"], event["data"]["total"]) == ("void", "INV-1", 700)


async def test_unknown_invoices_are_404(client: Client, admin_headers: dict[str, str]) -> None:
    tenant = await create_tenant(client, admin_headers, "inv")
    for action in (*ACTIONS, "lines"):
        # An empty body is valid for every action: the missing invoice is what answers.
        response = await client.post(f"/v1/invoices/999999/{action}", json={}, headers=tenant.headers)
        assert response.status_code == 404, (action, response.text)
