"""A refund the tenant resolves ``failed`` while the reconciliation job is asking the provider
about it, and the provider answers that it refunded after all: the job records that answer as the
refund's webhook would (docs/concepts/payment-reconciliation.md, "Refunds nothing settled"). The
refund is counted again if its payment has room for it; if refunds made since leave none, it stays
failed and the tenant is shown by how much the customer got more back. Before 2026-11-29 the job
dropped the answer, the refund being no longer pending, and only a webhook still counted it.

The job really runs, and its call to the sandbox waits while the other actors act: a request
(``POST /v1/refunds/{id}/sync``) or a second run shows the refund to the tenant, who resolves it."""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field
from datetime import datetime

from billplane_sandbox.adapter import SandboxAdapter
from billplane_sandbox.plugin import PLUGIN

from billplane.payments.reconcile_run import ReconcileReport
from billplane.plugins import AdapterContext, ProviderAdapter, RefundRequest, RefundResult
from billplane.plugins.host import PluginHost
from billplane.runtime import Runtime
from tests.platform.concurrently import WAIT
from tests.platform.dunning.held import use
from tests.platform.dunning.held_refunds import (
    Behaviour,
    HeldSandbox,
    WaitingRefund,
    events_of,
    made_ago,
    refund_row,
    refunded_amount,
    settles,
    waiting_refund,
)
from tests.platform.dunning.helpers import Client
from tests.platform.dunning.stuck import reconciliation
from tests.platform.sync_fakes import drain

FIVE_DAYS = 5 * 24 * 60 + 1  # minutes: past BILLPLANE_PAYMENT_PENDING_FLAG_HOURS' default
COUNTED_AGAIN = ["refund.created", "refund.action_required", "refund.failed", "refund.succeeded"]


@dataclass
class _Gate:
    """The first call asking the sandbox about the watched tenant's refund waits until ``opened``,
    then answers as the sandbox itself does (the refund was made, and succeeded); ``asked`` tells
    that it is waiting. Every later call answers as the host's ``Behaviour`` says."""

    taken: bool = False
    asked: asyncio.Event = field(default_factory=asyncio.Event)
    opened: asyncio.Event = field(default_factory=asyncio.Event)

    def first(self) -> bool:
        first, self.taken = not self.taken, True
        return first

    async def hold(self) -> None:
        self.asked.set()
        await self.opened.wait()


def _gated_host(waiting: WaitingRefund, gate: _Gate, behaviour: Behaviour) -> PluginHost:
    class Gated(HeldSandbox):
        async def refund_status(self, provider_refund_id: str) -> RefundResult | None:
            if self._watched() is not None and gate.first():
                await gate.hold()
                return await SandboxAdapter.refund_status(self, provider_refund_id)
            return await super().refund_status(provider_refund_id)

        async def find_refund(
            self, request: RefundRequest, *, idempotency_key: str, created_after: datetime
        ) -> RefundResult | None:
            if self._watched() is not None and gate.first():
                await gate.hold()
                return await SandboxAdapter.find_refund(
                    self, request, idempotency_key=idempotency_key, created_after=created_after
                )
            return await super().find_refund(request, idempotency_key=idempotency_key, created_after=created_after)

    def create_adapter(context: AdapterContext) -> ProviderAdapter:
        return Gated(context, dataclasses.replace(behaviour, waiting=waiting))

    host = PluginHost(["sandbox"])
    host.register(dataclasses.replace(PLUGIN, create_adapter=create_adapter))
    return host


async def _asking(worker: Runtime, gate: _Gate) -> asyncio.Future[ReconcileReport]:
    """The reconciliation job, started, its call about the refund waiting at the gate."""
    job = asyncio.ensure_future(reconciliation(worker).run())
    await asyncio.wait_for(gate.asked.wait(), timeout=20 * WAIT)
    return job


async def _resolved_failed(client: Client, waiting: WaitingRefund) -> None:
    url, headers = f"/v1/refunds/{waiting.refund}/resolve", waiting.setup.tenant.headers
    resolved = await client.post(url, json={"outcome": "failed"}, headers=headers)
    assert resolved.status_code == 200, resolved.text
    assert (resolved.json()["status"], resolved.json()["failure_code"]) == ("failed", "resolved_by_tenant")


async def _held_and_asked(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> tuple[WaitingRefund, _Gate, asyncio.Future[ReconcileReport]]:
    """A refund of 400 the sandbox holds as pending for five days, not shown yet; the job asks how
    it stands, and while it waits for the answer the tenant asks too (``/sync``: still pending),
    is shown it, and resolves it ``failed``."""
    waiting = await waiting_refund(client, admin_headers, worker)
    gate = _Gate()
    use(client, worker, _gated_host(waiting, gate, Behaviour(answer=settles("pending"))))
    await made_ago(worker, waiting, minutes=FIVE_DAYS)
    job = await _asking(worker, gate)
    synced = await client.post(f"/v1/refunds/{waiting.refund}/sync", headers=waiting.setup.tenant.headers)
    assert synced.status_code == 200, synced.text
    assert synced.json()["action_required"] is not None  # still pending after five days: the tenant's
    await _resolved_failed(client, waiting)
    assert await refunded_amount(worker, waiting) == 0
    return waiting, gate, job


async def test_a_refund_resolved_failed_while_the_job_asked_counts_again_when_the_provider_refunded(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    waiting, gate, job = await _held_and_asked(client, admin_headers, worker)

    gate.opened.set()  # the sandbox answers the job: succeeded
    report = await job

    refund = await refund_row(worker, waiting)
    assert (refund["status"], refund["action_required"]) == ("succeeded", None)
    assert await refunded_amount(worker, waiting) == 400  # reserved again: it went back to the customer
    assert await events_of(worker, waiting) == COUNTED_AGAIN
    assert report.refunds.settled == 1


async def test_with_no_room_left_on_the_payment_it_stays_failed_and_is_shown_to_the_tenant(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    waiting, gate, job = await _held_and_asked(client, admin_headers, worker)
    again = await client.post(
        "/v1/refunds", json={"payment_id": waiting.payment}, headers=waiting.setup.tenant.headers
    )  # all that is left: the whole payment again
    assert again.status_code == 201, again.text
    await drain(worker)
    paid = await refunded_amount(worker, waiting)

    gate.opened.set()
    report = await job

    refund = await refund_row(worker, waiting)
    assert refund["status"] == "failed"  # billplane counts no more than was paid
    assert "400 USD more back than was paid" in refund["action_required"]
    assert await refunded_amount(worker, waiting) == paid
    assert (await events_of(worker, waiting))[-1] == "refund.action_required"
    assert report.refunds.action_required == 1


async def test_a_lost_refund_resolved_failed_while_the_job_looked_it_up_counts_again_when_found(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    """A refund whose answer was lost (made at the sandbox): the job looks it up, and while it
    waits for the answer a second run, which cannot reach the sandbox, shows it to the tenant
    (five days old), who resolves it ``failed``. The lookup then finds it, succeeded."""
    waiting = await waiting_refund(client, admin_headers, worker, lose_answer=True)
    assert (await refund_row(worker, waiting))["provider_refund_id"] is None
    gate = _Gate()
    use(client, worker, _gated_host(waiting, gate, Behaviour(down=True)))
    await made_ago(worker, waiting, minutes=FIVE_DAYS)
    job = await _asking(worker, gate)
    await reconciliation(worker).run()  # the second run: unreachable, and five days old
    assert (await refund_row(worker, waiting))["action_required"] is not None
    await _resolved_failed(client, waiting)

    gate.opened.set()
    report = await job

    refund = await refund_row(worker, waiting)
    assert (refund["status"], refund["action_required"]) == ("succeeded", None)
    assert refund["provider_refund_id"].startswith("sbx_re_")  # what the lookup found
    assert await refunded_amount(worker, waiting) == 400
    assert await events_of(worker, waiting) == COUNTED_AGAIN
    assert report.refunds.settled == 1
