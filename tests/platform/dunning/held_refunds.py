"""Shared steps of the tests of refunds nothing settled: the real sandbox, whose refunds are
answered ``pending`` here (its own succeed at once) and never followed by a webhook, as when the
provider's webhook is lost; or never answered at all, made (``pm_sandbox_refund_answer_lost``) or
not."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec
from billplane_sandbox import events
from billplane_sandbox.adapter import SandboxAdapter
from billplane_sandbox.ids import make_id
from billplane_sandbox.payment_methods import SUCCEEDS
from billplane_sandbox.plugin import PLUGIN

from billplane.plugins import (
    AdapterContext,
    Capability,
    ProviderAdapter,
    ProviderError,
    RefundRequest,
    RefundResult,
    RetryableProviderError,
)
from billplane.plugins.host import PluginHost
from billplane.runtime import Runtime
from tests.platform.dunning.held import use
from tests.platform.dunning.helpers import Client, Setup, execute, one, sandbox_customer, subscribe
from tests.platform.dunning.stuck import PAYMENT
from tests.platform.invoices.helpers import WEBHOOK_SECRET, event_types
from tests.platform.sync_fakes import FAST, drain

Answer = Callable[[str], RefundResult | None]
Found = Callable[[RefundRequest], RefundResult | None]
# What a provider's refund may say that makes it not billplane's refund of 400 USD, and the words
# billplane then uses: another billplane refund's (another tenant's, say), another payment's,
# another amount's.
ANOTHER_REFUND: list[tuple[dict[str, Any], str]] = [
    ({"billplane_refund_id": 10**9}, "is billplane refund 1000000000's"),
    ({"provider_payment_id": "sbx_pay_other"}, "is of another payment"),
    ({"amount": 399, "currency": "USD"}, "is of 399 USD, not 400 USD"),
]
REFUND = "SELECT id, status, provider_refund_id, action_required, provider_checked_at FROM refunds"


@dataclass
class WaitingRefund:
    setup: Setup
    payment: int
    refund: int
    asked: list[str] = field(default_factory=list)  # refund_status calls about this tenant's refunds
    looked_up: list[int] = field(default_factory=list)  # find_refund calls about this tenant's refunds


@dataclass(frozen=True, kw_only=True)
class Behaviour:
    """How ``refund_host``'s sandbox answers; see there."""

    waiting: WaitingRefund | None = None
    answer: Answer | None = None
    capable: bool = True
    lookup: bool = True
    found: Found | None = None
    down: bool = False
    unanswered: bool = False
    lose_answer: bool = False  # the refund is made, and its answer lost
    refuses: bool = False  # find_refund answers with a refusal (a ProviderError, not retryable)
    answered_as: str | None = None


class HeldSandbox(SandboxAdapter):
    def __init__(self, context: AdapterContext, behaviour: Behaviour) -> None:
        super().__init__(context, context.credentials)  # type: ignore[arg-type]
        self.tenant_id = context.tenant_id
        self.behaviour = behaviour

    def _watched(self) -> WaitingRefund | None:
        waiting = self.behaviour.waiting
        return waiting if waiting is not None and self.tenant_id == waiting.setup.tenant.id else None

    def _ask(self, capable: bool, method: str) -> None:  # noqa: FBT001 - read as "capable of method"
        if not capable:
            raise AssertionError(f"{method} called without its capability")
        if self.behaviour.down:
            raise RetryableProviderError("connection refused")

    async def refund(self, request: RefundRequest, *, idempotency_key: str) -> RefundResult:
        if self.behaviour.unanswered:
            raise RetryableProviderError("connection reset")
        made = await super().refund(request, idempotency_key=idempotency_key)
        if self.behaviour.lose_answer:
            raise RetryableProviderError("connection reset after the refund was made")
        answered_as = self.behaviour.answered_as or made.provider_refund_id
        return msgspec.structs.replace(made, status="pending", provider_refund_id=answered_as)

    async def refund_status(self, provider_refund_id: str) -> RefundResult | None:
        if (waiting := self._watched()) is not None:
            waiting.asked.append(provider_refund_id)
        self._ask(self.behaviour.capable, "refund_status")
        if self.behaviour.answer is not None:
            return self.behaviour.answer(provider_refund_id)
        return await super().refund_status(provider_refund_id)

    async def find_refund(
        self, request: RefundRequest, *, idempotency_key: str, created_after: datetime
    ) -> RefundResult | None:
        if (waiting := self._watched()) is not None:
            waiting.looked_up.append(request.refund_id)
        self._ask(self.behaviour.lookup, "find_refund")
        if self.behaviour.refuses:
            raise ProviderError("Invalid API Key provided", code="authentication_error")
        if self.behaviour.found is not None:
            return self.behaviour.found(request)
        return await super().find_refund(request, idempotency_key=idempotency_key, created_after=created_after)


def refund_host(waiting: WaitingRefund | None = None, **behaviour: Any) -> PluginHost:
    """The real sandbox whose refunds are answered ``pending`` (or, ``unanswered``, never reach it;
    or, ``lose_answer``, are made and their answer lost); ``refund_status`` answers ``answer(id)``
    (else the sandbox's own, succeeded), ``find_refund`` ``found(request)`` (else the sandbox's own,
    from its ledger), or the sandbox is unreachable (``down``: a ``RetryableProviderError``), or
    ``find_refund`` refuses (``refuses``: a ``ProviderError``). Without the ``refund_status``
    (``capable=False``) or ``refund_lookup`` (``lookup=False``) capability, the method must never
    be called. ``answered_as``: the provider refund id the refund call answers with. Calls about
    ``waiting``'s tenant's refunds are recorded in ``waiting.asked`` and ``waiting.looked_up``."""
    chosen = Behaviour(waiting=waiting, **behaviour)

    def create_adapter(context: AdapterContext) -> ProviderAdapter:
        return HeldSandbox(context, chosen)

    capabilities = PLUGIN.capabilities - ({Capability.REFUND_STATUS} if not chosen.capable else set())
    capabilities -= {Capability.REFUND_LOOKUP} if not chosen.lookup else set()
    host = PluginHost(["sandbox"])
    host.register(dataclasses.replace(PLUGIN, create_adapter=create_adapter, capabilities=capabilities))
    return host


def settles(status: str) -> Answer:
    def answer(provider_refund_id: str) -> RefundResult:
        return RefundResult(provider_refund_id=provider_refund_id, status=status)  # type: ignore[arg-type]

    return answer


async def waiting_refund(
    client: Client,
    admin_headers: dict[str, str],
    worker: Runtime,
    *,
    amount: int = 400,
    method: str = SUCCEEDS,
    unanswered: bool = False,
    lose_answer: bool = False,
    before: Callable[[Setup, int], Awaitable[None]] | None = None,
    answered_as: str | None = None,
) -> WaitingRefund:
    """A subscription's first invoice paid with ``method``, and a refund of ``amount`` of it that
    the sandbox holds as pending (as ``answered_as``, if given), or whose every request went
    unanswered: none reached the sandbox (``unanswered``), or the sandbox refunded and the answer
    was lost (``lose_answer``, or paid with ``REFUND_ANSWER_LOST``). ``before(setup, payment id)``
    runs before the refund is made."""
    use(client, worker, refund_host())
    setup = await sandbox_customer(client, admin_headers, worker, method, prefix="refwait")
    await subscribe(client, setup, trial_days=0)
    await drain(worker)
    payment = await one(worker, setup.tenant, PAYMENT)
    assert payment["status"] == "succeeded"
    if before is not None:
        await before(setup, payment["id"])
    use(client, worker, refund_host(unanswered=unanswered, lose_answer=lose_answer, answered_as=answered_as))
    worker.sync_options = dataclasses.replace(FAST, max_attempts=1)  # an unanswered refund gives up at once
    created = await client.post(
        "/v1/refunds", json={"payment_id": payment["id"], "amount": amount}, headers=setup.tenant.headers
    )
    assert created.status_code == 201, created.text
    await drain(worker)
    return WaitingRefund(setup, payment["id"], created.json()["id"])


async def refund_row(worker: Runtime, waiting: WaitingRefund) -> dict[str, Any]:
    return await one(worker, waiting.setup.tenant, f"{REFUND} WHERE id = :id", id=waiting.refund)


async def refunded_amount(worker: Runtime, waiting: WaitingRefund) -> int:
    query = "SELECT refunded_amount FROM payments WHERE id = :id"
    row = await one(worker, waiting.setup.tenant, query, id=waiting.payment)
    return int(row["refunded_amount"])


async def made_ago(worker: Runtime, waiting: WaitingRefund, *, minutes: float) -> None:
    """The refund was made ``minutes`` ago, its request gave up (if it did) as long ago, and it
    has not been asked about since."""
    binds = {"secs": minutes * 60, "id": waiting.refund}
    await execute(
        worker, waiting.setup.tenant,
        "UPDATE refunds SET created_at = now() - make_interval(secs => :secs), provider_checked_at = NULL "
        "WHERE id = :id", **binds,
    )  # fmt: skip
    await execute(
        worker, waiting.setup.tenant,
        "UPDATE outbox SET done_at = now() - make_interval(secs => :secs) "
        "WHERE kind = 'refund.create' AND object_id = :id AND done_at IS NOT NULL", **binds,
    )  # fmt: skip


async def its_webhook(client: Client, worker: Runtime, waiting: WaitingRefund, status: str) -> None:
    """The sandbox's ``refund.updated`` for the refund arrives after all, and is applied."""
    provider_refund_id = (await refund_row(worker, waiting))["provider_refund_id"]
    webhook = events.sign(events.refund_updated(provider_refund_id, status), WEBHOOK_SECRET)  # type: ignore[arg-type]
    delivered = await client.post(
        f"/v1/webhooks/sandbox/{waiting.setup.account}", content=webhook.body, headers=webhook.headers
    )
    assert delivered.status_code == 200, delivered.text
    await drain(worker)


def sandbox_refund_id(waiting: WaitingRefund, key: str = "found-by-hand") -> str:
    """A refund id the tenant's sandbox account gave (as the tenant would find it there)."""
    return make_id(waiting.setup.account, "re", key)


async def events_of(worker: Runtime, waiting: WaitingRefund) -> list[str]:
    return await event_types(worker, waiting.setup.tenant, "refund", waiting.refund)
