"""Delivering events to a receiver on 127.0.0.1: signatures, retries, order, disabling, filters."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import replace

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from billplane.runtime import Runtime
from tests.conftest import CreatedTenant, create_tenant
from tests.platform.events.conftest import FAST
from tests.platform.events.helpers import drain, emit_event
from tests.platform.events.receiver import Receiver
from tests.platform.listable import events_listable

Client = AsyncTestClient[Litestar]


def verify(secret: str, headers: dict[str, str], body: bytes, *, tolerance: int = 300) -> bool:
    """Standard Webhooks verification, written from the specification's text:
    signed content = msg_id + "." + timestamp + "." + body; key = base64-decoded secret after
    "whsec_"; HMAC-SHA256, base64; the header lists space-separated "v1,<sig>" entries."""
    msg_id, timestamp = headers["webhook-id"], headers["webhook-timestamp"]
    if abs(time.time() - int(timestamp)) > tolerance:
        return False
    key = base64.b64decode(secret.split("_", 1)[1])
    content = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    for entry in headers["webhook-signature"].split(" "):
        version, _, value = entry.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return True
    return False


async def _endpoint(client: Client, tenant: CreatedTenant, url: str, events: list[str] | None = None) -> dict[str, str]:
    body = {"url": url, "enabled_events": events or []}
    response = await client.post("/v1/webhook-endpoints", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text
    created: dict[str, str] = response.json()
    return created


async def _deliveries(client: Client, tenant: CreatedTenant, endpoint_id: object) -> list[dict[str, object]]:
    response = await client.get(f"/v1/webhook-endpoints/{endpoint_id}/deliveries", headers=tenant.headers)
    data: list[dict[str, object]] = response.json()["data"]
    return data


async def _tx(runtime: Runtime, tenant: CreatedTenant, event_id: object) -> int:
    """The event's writing transaction, which webhook-id names."""
    async with runtime.database.tenant_session(tenant.schema) as session:
        return int(await session.scalar(text("SELECT tx::text FROM events WHERE id = :id"), {"id": event_id}))


async def test_a_delivery_is_signed_per_standard_webhooks(
    client: Client, tenant: CreatedTenant, runtime: Runtime, hooks: Receiver
) -> None:
    endpoint = await _endpoint(client, tenant, hooks.url, ["invoice.*"])
    await emit_event(runtime, tenant, "invoice.paid", 7, amount_paid=1999, currency="USD")

    assert await drain(runtime, tenant, FAST) == ["delivered"]

    [got] = hooks.received
    assert verify(endpoint["secret"], got.headers, got.body)
    assert not verify(endpoint["secret"], got.headers, got.body + b" ")
    assert not verify("whsec_" + base64.b64encode(b"x" * 32).decode(), got.headers, got.body)
    body = json.loads(got.body)
    assert set(body) == {"id", "type", "created_at", "data"}
    assert body["type"] == "invoice.paid"
    assert body["data"] == {"id": 7, "amount_paid": 1999, "currency": "USD"}
    tx = await _tx(runtime, tenant, body["id"])
    assert tx > 0
    assert got.headers["webhook-id"] == f"evt_{tenant.id}_{body['id']}_{tx}"
    assert got.headers["content-type"] == "application/json"
    event = (await client.get(f"/v1/events/{body['id']}", headers=tenant.headers)).json()
    assert event["type"] == "invoice.paid"
    assert event["object_id"] == 7
    [delivery] = await _deliveries(client, tenant, endpoint["id"])
    assert delivery["status"] == "succeeded"
    assert delivery["last_status_code"] == 204


async def test_failures_are_retried_on_the_schedule_with_the_same_id(
    client: Client, tenant: CreatedTenant, runtime: Runtime, hooks: Receiver
) -> None:
    endpoint = await _endpoint(client, tenant, hooks.url, ["invoice.paid"])
    hooks.statuses = [500, 503, 302]
    await emit_event(runtime, tenant, "invoice.paid", 1)
    options = replace(FAST, retry_schedule=(0.05, 0.1, 0.2))

    assert await drain(runtime, tenant, options) == ["retry", "retry", "retry", "delivered"]

    ids = {got.headers["webhook-id"] for got in hooks.received}
    assert len(ids) == 1
    stamps = [got.headers["webhook-timestamp"] for got in hooks.received]
    assert all(verify(endpoint["secret"], got.headers, got.body) for got in hooks.received), stamps
    [delivery] = await _deliveries(client, tenant, endpoint["id"])
    assert delivery["attempts"] == 4
    assert delivery["status"] == "succeeded"


async def test_retries_wait_at_least_their_delay(
    client: Client, tenant: CreatedTenant, runtime: Runtime, hooks: Receiver
) -> None:
    await _endpoint(client, tenant, hooks.url, ["invoice.*"])
    hooks.statuses = [500, 500]
    await emit_event(runtime, tenant, "invoice.paid", 1)
    started = time.monotonic()
    await drain(runtime, tenant, replace(FAST, retry_schedule=(0.3, 0.6, 1.0)))
    assert time.monotonic() - started >= 0.9
    assert len(hooks.received) == 3


async def test_the_default_schedule_retries_8_times_over_a_day() -> None:
    from billplane.events.options import WebhookOptions  # noqa: PLC0415

    schedule = WebhookOptions().retry_schedule
    assert len(schedule) >= 8
    assert sum(schedule) >= 24 * 3600
    assert list(schedule[:6]) == sorted(schedule[:6])


async def test_a_status_code_and_error_are_kept(
    client: Client, tenant: CreatedTenant, runtime: Runtime, hooks: Receiver
) -> None:
    endpoint = await _endpoint(client, tenant, hooks.url, ["invoice.*"])
    hooks.statuses = [418]
    await emit_event(runtime, tenant, "invoice.paid", 1)
    services_options = replace(FAST, retry_schedule=(30.0,))
    from billplane.events.worker import webhook_services  # noqa: PLC0415

    services = webhook_services(runtime, services_options)
    [ref] = await services.sweeper.due([(tenant.id, tenant.schema)])
    assert await services.deliverer.deliver(ref) == "retry"
    [delivery] = await _deliveries(client, tenant, endpoint["id"])
    assert delivery["status"] == "pending"
    assert delivery["last_status_code"] == 418
    assert "418" in str(delivery["last_error"])
    assert await services.sweeper.due([(tenant.id, tenant.schema)]) == []  # not due for 30 s


async def test_deliveries_are_ordered_per_object_and_endpoint(
    client: Client, tenant: CreatedTenant, runtime: Runtime, hooks: Receiver
) -> None:
    await _endpoint(client, tenant, hooks.url, ["invoice.*"])
    hooks.statuses = [500]  # the first event of invoice 1 fails once
    await emit_event(runtime, tenant, "invoice.created", 1)
    await emit_event(runtime, tenant, "invoice.finalized", 1)
    await emit_event(runtime, tenant, "invoice.paid", 1)

    from billplane.events.worker import webhook_services  # noqa: PLC0415

    services = webhook_services(runtime, FAST)
    [first] = await services.sweeper.due([(tenant.id, tenant.schema)])  # the others wait behind it
    assert await services.deliverer.deliver(first) == "retry"
    # Attempting a later one directly is refused while the earlier one is pending.
    later = replace(first, delivery_id=first.delivery_id + 1)
    assert await services.deliverer.deliver(later) == "skipped"
    await emit_event(runtime, tenant, "invoice.created", 2)  # another object: not held back

    await drain(runtime, tenant, FAST)

    order = [(json.loads(got.body)["data"]["id"], json.loads(got.body)["type"]) for got in hooks.received]
    assert [change for object_id, change in order if object_id == 1] == [
        "invoice.created",
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
    ]
    assert order.index((2, "invoice.created")) < order.index((1, "invoice.finalized"))


async def test_an_endpoint_that_keeps_failing_is_disabled_and_the_tenant_told(
    client: Client, tenant: CreatedTenant, runtime: Runtime, hooks: Receiver
) -> None:
    failing = await _endpoint(client, tenant, hooks.url, ["invoice.*"])
    with_others = await _endpoint(client, tenant, hooks.url.replace("/hooks", "/other"), ["webhook_endpoint.*"])
    hooks.failing_paths = {"/hooks"}
    await emit_event(runtime, tenant, "invoice.paid", 1)
    await emit_event(runtime, tenant, "invoice.paid", 2)  # pending behind nothing, fails too

    outcomes = await drain(runtime, tenant, FAST)

    assert "disabled" in outcomes
    shown = (await client.get(f"/v1/webhook-endpoints/{failing['id']}", headers=tenant.headers)).json()
    assert shown["status"] == "disabled"
    assert "in a row failed" in shown["disabled_reason"]
    statuses = {d["status"] for d in await _deliveries(client, tenant, failing["id"])}
    assert statuses == {"failed"}
    await events_listable(runtime.settings.database.url)
    events = (await client.get("/v1/events?type=webhook_endpoint.disabled", headers=tenant.headers)).json()["data"]
    assert [(event["object_id"], event["data"]["status"]) for event in events] == [(failing["id"], "disabled")]
    # The tenant's other endpoint was told too, by webhook.
    told = [json.loads(got.body)["type"] for got in hooks.received if got.path == "/other"]
    assert "webhook_endpoint.disabled" in told
    assert with_others["id"] != failing["id"]


async def test_a_success_in_between_keeps_the_endpoint(
    client: Client, tenant: CreatedTenant, runtime: Runtime, hooks: Receiver
) -> None:
    endpoint = await _endpoint(client, tenant, hooks.url, ["invoice.*"])
    # One event's deliveries all fail; another's succeed in between: the receiver is alive.
    hooks.statuses = [500, 204, 500, 500, 500]
    await emit_event(runtime, tenant, "invoice.paid", 1)
    await emit_event(runtime, tenant, "invoice.paid", 2)
    await drain(runtime, tenant, FAST)
    shown = (await client.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=tenant.headers)).json()
    assert shown["status"] == "enabled"
    assert sorted(str(d["status"]) for d in await _deliveries(client, tenant, endpoint["id"])) == [
        "failed",
        "succeeded",
    ]


async def test_endpoints_get_only_the_types_they_subscribe_to(
    client: Client, tenant: CreatedTenant, runtime: Runtime, hooks: Receiver
) -> None:
    await _endpoint(client, tenant, hooks.url.replace("/hooks", "/invoices"), ["invoice.*"])
    await _endpoint(client, tenant, hooks.url.replace("/hooks", "/paid"), ["invoice.paid", "customer.created"])
    await _endpoint(client, tenant, hooks.url.replace("/hooks", "/all"), [])
    for type_ in ("invoice.paid", "invoice.voided", "customer.created", "subscription.updated"):
        await emit_event(runtime, tenant, type_, 1)
    await drain(runtime, tenant, FAST)
    got: dict[str, list[str]] = {}
    for request in hooks.received:
        got.setdefault(request.path, []).append(json.loads(request.body)["type"])
    assert sorted(got["/invoices"]) == ["invoice.paid", "invoice.voided"]
    assert sorted(got["/paid"]) == ["customer.created", "invoice.paid"]
    assert set(got["/all"]) >= {"invoice.paid", "invoice.voided", "customer.created", "subscription.updated"}


async def test_a_tenant_receives_only_its_own_events(
    client: Client, tenant: CreatedTenant, runtime: Runtime, hooks: Receiver, admin_headers: dict[str, str]
) -> None:
    other = await create_tenant(client, admin_headers, "wh")
    await _endpoint(client, tenant, hooks.url, ["invoice.*"])
    await emit_event(runtime, other, "invoice.paid", 99)
    await drain(runtime, other, FAST)
    await drain(runtime, tenant, FAST)
    assert hooks.received == []
    await events_listable(runtime.settings.database.url)
    assert (await client.get("/v1/events?type=invoice.paid", headers=tenant.headers)).json()["data"] == []
    mine = await client.get("/v1/events?type=invoice.paid", headers=other.headers)
    assert [event["object_id"] for event in mine.json()["data"]] == [99]


async def test_webhook_ids_never_collide_across_tenants_and_survive_a_replay(
    client: Client, tenant: CreatedTenant, runtime: Runtime, hooks: Receiver, admin_headers: dict[str, str]
) -> None:
    """Two tenants sending to one receiver (an agency's): the same event id in each, yet two
    webhook-ids, each signed; a replay sends an event with the webhook-id it had."""
    other = await create_tenant(client, admin_headers, "wh")
    secrets = {}
    for sender in (tenant, other):
        secrets[sender.id] = (await _endpoint(client, sender, hooks.url, ["invoice.*"]))["secret"]
        await emit_event(runtime, sender, "invoice.paid", 1)
        await drain(runtime, sender, FAST)
    first, second = hooks.received
    assert json.loads(first.body)["id"] == json.loads(second.body)["id"]  # per-tenant event ids collide
    assert first.headers["webhook-id"] != second.headers["webhook-id"]
    for got, sender in ((first, tenant), (second, other)):
        event_id = json.loads(got.body)["id"]
        assert got.headers["webhook-id"] == f"evt_{sender.id}_{event_id}_{await _tx(runtime, sender, event_id)}"
        assert verify(secrets[sender.id], got.headers, got.body)  # signed over the header's id

    [endpoint] = (await client.get("/v1/webhook-endpoints", headers=tenant.headers)).json()["data"]
    replayed = await client.post(f"/v1/webhook-endpoints/{endpoint['id']}/replay", json={}, headers=tenant.headers)
    assert replayed.json() == {"queued": 1}, replayed.text
    await drain(runtime, tenant, FAST)
    again = hooks.received[-1]
    assert (again.headers["webhook-id"], again.body) == (first.headers["webhook-id"], first.body)
    assert verify(secrets[tenant.id], again.headers, again.body)


async def test_a_reused_event_id_gets_another_webhook_id(
    client: Client, tenant: CreatedTenant, runtime: Runtime, hooks: Receiver
) -> None:
    """After an in-place restore the identity goes back to the dump's: a new event takes the id of
    one already delivered. Its webhook-id names the writing transaction too, so a receiver that
    deduplicates by webhook-id does not drop it (docs/operations/backups.md)."""
    await _endpoint(client, tenant, hooks.url, ["invoice.*"])
    await emit_event(runtime, tenant, "invoice.paid", 1)
    assert await drain(runtime, tenant, FAST) == ["delivered"]
    event_id = json.loads(hooks.received[0].body)["id"]
    # What a restore from a dump taken before this event leaves: no such row, the identity behind it.
    async with runtime.database.tenant_session(tenant.schema) as session:
        await session.execute(text("DELETE FROM webhook_deliveries WHERE event_id = :id"), {"id": event_id})
        await session.execute(text("DELETE FROM events WHERE id = :id"), {"id": event_id})
        await session.execute(text(f"ALTER TABLE events ALTER COLUMN id RESTART WITH {int(event_id)}"))

    await emit_event(runtime, tenant, "invoice.paid", 2)
    assert await drain(runtime, tenant, FAST) == ["delivered"]

    first, second = hooks.received
    assert json.loads(second.body)["id"] == event_id  # the same event id, another event
    assert json.loads(second.body)["data"]["id"] == 2
    assert first.headers["webhook-id"] != second.headers["webhook-id"]
    assert second.headers["webhook-id"] == f"evt_{tenant.id}_{event_id}_{await _tx(runtime, tenant, event_id)}"


async def test_an_event_written_before_transaction_ids_says_tx_0(
    client: Client, tenant: CreatedTenant, runtime: Runtime, hooks: Receiver
) -> None:
    """Events written before tenant_0011 (or reset after a restore into another server) have tx 0:
    their webhook-id ends in _0, the same on every attempt."""
    await _endpoint(client, tenant, hooks.url, ["invoice.*"])
    hooks.statuses = [500]
    await emit_event(runtime, tenant, "invoice.paid", 1)
    async with runtime.database.tenant_session(tenant.schema) as session:
        await session.execute(text("UPDATE events SET tx = '0' WHERE type = 'invoice.paid'"))

    assert await drain(runtime, tenant, FAST) == ["retry", "delivered"]

    event_id = json.loads(hooks.received[0].body)["id"]
    assert [got.headers["webhook-id"] for got in hooks.received] == [f"evt_{tenant.id}_{event_id}_0"] * 2


async def test_the_worker_delivers_through_the_queue(
    client: Client, tenant: CreatedTenant, runtime: Runtime, hooks: Receiver, monkeypatch: object
) -> None:
    """End to end: the sweep task defers a job, procrastinate runs it, the receiver gets the event."""
    import pytest  # noqa: PLC0415

    from billplane.events import worker as webhook_worker  # noqa: PLC0415
    from billplane.sync.worker import run_worker  # noqa: PLC0415
    from tests.platform.sync_fakes import clear_jobs  # noqa: PLC0415

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    monkeypatch.setattr(webhook_worker, "webhook_options", lambda: FAST)
    await clear_jobs(runtime)
    endpoint = await _endpoint(client, tenant, hooks.url, ["invoice.*"])
    await emit_event(runtime, tenant, "invoice.paid", 5)
    services = webhook_worker.webhook_services(runtime)
    assert await services.sweeper.sweep() >= 1

    await run_worker(runtime, wait=False)

    assert [json.loads(got.body)["data"]["id"] for got in hooks.received] == [5]
    assert [d["status"] for d in await _deliveries(client, tenant, endpoint["id"])] == ["succeeded"]


async def test_addresses_are_checked_again_when_connecting(
    client: Client, tenant: CreatedTenant, runtime: Runtime, hooks: Receiver
) -> None:
    """A name accepted at creation that resolves to a forbidden address is refused at delivery."""
    endpoint = await _endpoint(client, tenant, hooks.url.replace("127.0.0.1", "localhost"), ["invoice.*"])
    await emit_event(runtime, tenant, "invoice.paid", 1)
    strict = replace(FAST, allow_http_loopback=False, retry_schedule=())
    assert await drain(runtime, tenant, strict) == ["disabled"]  # its only attempt failed
    assert hooks.received == []
    [delivery] = await _deliveries(client, tenant, endpoint["id"])
    assert "refused to connect" in str(delivery["last_error"])
