"""A mirrored subscription the billing run resumes at its ``resume_at`` is resumed at its provider too.

``POST .../pause`` queues ``subscription.pause`` for the subscription's account; when the pause ends
at ``resume_at`` (the billing run, a test clock's step, a request's catch-up: ``billing.cycle``), the
run queues ``subscription.resume`` for that account in the same transaction, with the
subscription's ``sync_status`` ``pending``, as ``POST .../resume`` would. Before, nothing was queued
and the subscription stayed paused at its provider for good. One without an account queues nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from billplane_sandbox.adapter import SandboxAdapter
from billplane_sandbox.payment_methods import SUCCEEDS

from billplane.billing.run import BillingRun
from billplane.plugins import ProviderSubscription
from billplane.runtime import Runtime
from billplane.sync.worker import worker_services
from tests.platform.billing.test_resume_at import _pause, paused_until_an_hour_ago
from tests.platform.billing_seed import insert
from tests.platform.dunning.helpers import Client, Setup, database_now, execute, on_a_clock, one, sandbox_customer
from tests.platform.dunning.helpers import subscribe as subscribe_through_api
from tests.platform.invoices.helpers import rows
from tests.platform.sync_fakes import drain
from tests.platform.test_clocks import conftest as clock_fixtures
from tests.platform.test_clocks.test_advance import _advance

worker = clock_fixtures.worker  # the clock tests' worker, with the real sandbox (not the fake provider)

JAN_1 = datetime(2031, 1, 1, tzinfo=UTC)
ROWS = (
    "SELECT kind, object_id, provider_account_id, status FROM outbox WHERE kind LIKE 'subscription.%' "
    "AND object_id = ANY(:ids) ORDER BY id"
)


@pytest.fixture
def answers(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """What the sandbox last answered about each subscription it paused or resumed (provider id to
    status): the sandbox keeps no state of its own, so its answers are what it says of them. A drain
    runs every tenant's due rows: other tests' subscriptions may show up too."""
    answered: dict[str, str] = {}
    pause, resume = SandboxAdapter.pause_subscription, SandboxAdapter.resume_subscription

    async def paused(self: SandboxAdapter, provider_id: str, *, idempotency_key: str) -> ProviderSubscription:
        state = await pause(self, provider_id, idempotency_key=idempotency_key)
        answered[provider_id] = state.status
        return state

    async def resumed(self: SandboxAdapter, provider_id: str, *, idempotency_key: str) -> ProviderSubscription:
        state = await resume(self, provider_id, idempotency_key=idempotency_key)
        answered[provider_id] = state.status
        return state

    monkeypatch.setattr(SandboxAdapter, "pause_subscription", paused)
    monkeypatch.setattr(SandboxAdapter, "resume_subscription", resumed)
    return answered


async def _mirrored(client: Client, worker: Runtime, setup: Setup) -> tuple[int, str]:
    """A subscription created through the API (mirrored to the tenant's sandbox account), created
    there: its id and its provider id."""
    await drain(worker)  # its customer first: its create waits for the customer's
    subscription = await subscribe_through_api(client, setup, trial_days=0)
    await drain(worker)
    row = await one(
        worker, setup.tenant, "SELECT provider_account_id, provider_subscription_id FROM subscriptions WHERE id = :id",
        id=subscription,
    )  # fmt: skip
    assert row["provider_account_id"] == setup.account
    assert row["provider_subscription_id"] is not None
    return subscription, str(row["provider_subscription_id"])


async def _sync_status(worker: Runtime, setup: Setup, *ids: int) -> list[str]:
    found = await rows(
        worker, setup.tenant, "SELECT sync_status FROM subscriptions WHERE id = ANY(:ids) ORDER BY id", ids=list(ids)
    )
    return [row["sync_status"] for row in found]


async def test_a_clock_step_past_resume_at_resumes_the_subscription_at_its_provider(
    client: Client, admin_headers: dict[str, str], worker: Runtime, answers: dict[str, str]
) -> None:
    setup, clock = await on_a_clock(client, admin_headers, worker, SUCCEEDS, frozen_time=JAN_1, prefix="rsmcl")
    subscription, provider_id = await _mirrored(client, worker, setup)
    await _advance(client, worker, setup, clock, datetime(2031, 1, 5, tzinfo=UTC))
    await _pause(client, setup, subscription, datetime(2031, 1, 15, tzinfo=UTC))
    await drain(worker)
    assert answers[provider_id] == "paused"

    # The step, before any worker runs: the resume is queued with it.
    advanced = await client.post(
        f"/v1/test-clocks/{clock}/advance", json={"to": "2031-01-20T00:00:00Z"}, headers=setup.tenant.headers
    )
    assert advanced.status_code == 202, advanced.text
    await worker_services(worker).clocks.run()

    assert (await client.get(f"/v1/subscriptions/{subscription}", headers=setup.tenant.headers)).json()["status"] == (
        "active"
    )
    queued = await rows(worker, setup.tenant, ROWS, ids=[subscription])
    assert [(row["kind"], row["provider_account_id"], row["status"]) for row in queued] == [
        ("subscription.create", setup.account, "done"),
        ("subscription.pause", setup.account, "done"),
        ("subscription.resume", setup.account, "pending"),
    ]
    assert await _sync_status(worker, setup, subscription) == ["pending"]
    resumed = await rows(
        worker, setup.tenant, "SELECT data FROM events WHERE type = 'subscription.resumed' AND object_id = :id",
        id=subscription,
    )  # fmt: skip
    assert [event["data"]["sync_status"] for event in resumed] == ["pending"]  # as the request's would show

    await drain(worker)

    assert [row["status"] for row in await rows(worker, setup.tenant, ROWS, ids=[subscription])] == ["done"] * 3
    assert answers[provider_id] == "active"  # no longer paused at the sandbox
    assert await _sync_status(worker, setup, subscription) == ["synced"]


async def test_the_billing_run_resumes_mirrored_subscriptions_at_their_provider_and_no_other(
    client: Client, admin_headers: dict[str, str], worker: Runtime, answers: dict[str, str]
) -> None:
    """Not on a clock: a pause that ends within its period (``cycle._resume``) and one that ends at the
    period's end (``cycle._cross``) each queue their resume; a subscription with no account, none."""
    setup = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, "rsmrun")
    within, within_id = await _mirrored(client, worker, setup)
    at_end, at_end_id = await _mirrored(client, worker, setup)
    later = await database_now(worker) + timedelta(hours=1)
    await _pause(client, setup, within, later)
    await _pause(client, setup, at_end, later)
    await drain(worker)
    assert (answers[within_id], answers[at_end_id]) == ("paused", "paused")
    async with worker.database.tenant_session(setup.tenant.schema) as session:  # not through the API: no account
        unmirrored = await insert(
            session, "subscriptions", customer_id=setup.customer, plan_id=setup.plan, status="paused", quantity=1,
            current_period_end=later + timedelta(days=29),
        )  # fmt: skip
    # Their resume_at came an hour ago: two within the period, one at its end.
    await execute(
        worker, setup.tenant,
        "UPDATE subscriptions SET current_period_start = now() - interval '3 hours', "
        "paused_at = now() - interval '2 hours', resume_at = now() - interval '1 hour' WHERE id IN (:a, :b)",
        a=within, b=unmirrored,
    )  # fmt: skip
    await execute(
        worker, setup.tenant,
        "UPDATE subscriptions SET current_period_start = now() - interval '30 days', "
        "current_period_end = now() - interval '1 hour', paused_at = now() - interval '2 hours', "
        "resume_at = now() - interval '1 hour' WHERE id = :id",
        id=at_end,
    )  # fmt: skip

    await BillingRun(worker.database, worker.accounts).run()

    states = await rows(
        worker, setup.tenant, "SELECT id, status, resume_at FROM subscriptions WHERE id = ANY(:ids) ORDER BY id",
        ids=[within, at_end, unmirrored],
    )  # fmt: skip
    assert [(row["id"], row["status"], row["resume_at"]) for row in states] == [
        (within, "active", None), (at_end, "active", None), (unmirrored, "active", None),
    ]  # fmt: skip
    queued = await rows(worker, setup.tenant, ROWS, ids=[within, at_end, unmirrored])
    resumes = [(row["object_id"], row["provider_account_id"], row["status"]) for row in queued]
    assert [entry for entry in resumes if entry[2] == "pending"] == [
        (within, setup.account, "pending"),
        (at_end, setup.account, "pending"),
    ]
    assert [row["kind"] for row in queued if row["status"] == "pending"] == ["subscription.resume"] * 2
    assert unmirrored not in {row["object_id"] for row in queued}
    assert await _sync_status(worker, setup, within, at_end, unmirrored) == ["pending", "pending", "none"]

    await drain(worker)

    assert {row["status"] for row in await rows(worker, setup.tenant, ROWS, ids=[within, at_end])} == {"done"}
    assert (answers[within_id], answers[at_end_id]) == ("active", "active")
    assert await _sync_status(worker, setup, within, at_end, unmirrored) == ["synced", "synced", "none"]


async def test_a_request_that_catches_up_past_resume_at_queues_the_resume_with_its_own_change(
    client: Client, admin_headers: dict[str, str], worker: Runtime, answers: dict[str, str]
) -> None:
    setup = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, "rsmreq")
    subscription, provider_id = await _mirrored(client, worker, setup)
    await paused_until_an_hour_ago(client, worker, setup, subscription)
    await drain(worker)

    changed = await client.patch(
        f"/v1/subscriptions/{subscription}", json={"metadata": {"seen": "yes"}}, headers=setup.tenant.headers
    )

    assert changed.status_code == 200, changed.text
    assert (changed.json()["status"], changed.json()["sync_status"]) == ("active", "pending")
    queued: list[dict[str, Any]] = await rows(worker, setup.tenant, ROWS, ids=[subscription])
    # The resume the catch-up queued, and the metadata edit's own row (the sandbox mirrors it).
    pending = [row["kind"] for row in queued if row["status"] == "pending"]
    assert sorted(pending) == ["subscription.metadata", "subscription.resume"]
    await drain(worker)
    assert answers[provider_id] == "active"
