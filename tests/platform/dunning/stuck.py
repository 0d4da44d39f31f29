"""Shared steps of the reconciliation tests: a subscription renewal whose charge gave up.

The billing run invoices the renewal and queues its charge; the worker (one attempt allowed)
gives up on it, so the payment is left ``pending`` with no provider id, as after a provider
outage. ``age`` then moves the failure back in time past the reconciliation threshold.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from billplane_sandbox.adapter import SandboxAdapter
from billplane_sandbox.plugin import PLUGIN

from billplane.payments.lookup import PaymentLookup
from billplane.payments.reconcile_run import PaymentReconciliation
from billplane.plugins import (
    AdapterContext,
    Capability,
    ChargeRequest,
    ChargeResult,
    ProviderAdapter,
    RetryableProviderError,
)
from billplane.plugins.host import PluginHost
from billplane.runtime import Runtime
from tests.platform.dunning.helpers import (
    Client,
    Setup,
    execute,
    one,
    period_ends,
    sandbox_customer,
    subscribe,
)
from tests.platform.sync_fakes import FAST, drain

PAYMENT = "SELECT id, status, provider_payment_id, failure_code, failure_message, action_required FROM payments"
INVOICE = "SELECT id, status, attempt_count, amount_paid, total, next_payment_attempt_at FROM invoices"


@dataclass(frozen=True)
class Stuck:
    setup: Setup
    subscription: int
    invoice: int
    payment: int


async def stuck_renewal(client: Client, admin_headers: dict[str, str], worker: Runtime, token: str) -> Stuck:
    worker.sync_options = replace(FAST, max_attempts=1)
    setup = await sandbox_customer(client, admin_headers, worker, token, prefix="rec")
    subscription = await subscribe(client, setup)
    await drain(worker)
    await period_ends(worker, setup, subscription)
    await drain(worker)
    payment = await one(worker, setup.tenant, PAYMENT)
    charge = await one(worker, setup.tenant, "SELECT status FROM outbox WHERE kind = 'payment.charge'")
    assert (payment["status"], payment["provider_payment_id"], charge["status"]) == ("pending", None, "failed")
    invoice = await one(worker, setup.tenant, INVOICE)
    return Stuck(setup, subscription, invoice["id"], payment["id"])


async def age(worker: Runtime, stuck: Stuck, minutes: float = 11) -> None:
    """The charge gave up ``minutes`` ago."""
    await execute(
        worker, stuck.setup.tenant,
        "UPDATE outbox SET done_at = now() - make_interval(mins => :minutes) WHERE kind = 'payment.charge'",
        minutes=minutes,
    )  # fmt: skip


def reconciliation(worker: Runtime, lookup: PaymentLookup | None = None) -> PaymentReconciliation:
    return PaymentReconciliation(
        worker.database, lookup or PaymentLookup(worker.accounts, worker.plugins), timedelta(minutes=10)
    )


def sandbox_host(
    *,
    lookup: bool = True,
    charge: Callable[[ChargeRequest, ChargeResult], None] | None = None,
    down: bool = False,
    tenant_id: int | None = None,
) -> PluginHost:
    """The real sandbox, without the payment_lookup capability (``lookup=False``: its find_payment
    must then never be called), with ``charge`` run on each charge's result (to raise after it;
    only for ``tenant_id``'s charges when given: the worker also charges what earlier tests of its
    database left due), or unreachable when asked about a charge (``down``)."""

    class Sandbox(SandboxAdapter):
        def __init__(self, context: AdapterContext) -> None:
            super().__init__(context, context.credentials)  # type: ignore[arg-type]
            self.tenant_id = context.tenant_id

        async def charge(self, request: ChargeRequest, *, idempotency_key: str) -> ChargeResult:
            result = await super().charge(request, idempotency_key=idempotency_key)
            if charge is not None and tenant_id in (None, self.tenant_id):
                charge(request, result)
            return result

        async def find_payment(
            self, request: ChargeRequest, *, idempotency_key: str, created_after: datetime
        ) -> ChargeResult | None:
            if not lookup:
                raise AssertionError("find_payment called without the payment_lookup capability")
            if down:
                raise RetryableProviderError("connection refused")
            return await super().find_payment(request, idempotency_key=idempotency_key, created_after=created_after)

    def create_adapter(context: AdapterContext) -> ProviderAdapter:
        return Sandbox(context)

    capabilities = PLUGIN.capabilities if lookup else PLUGIN.capabilities - {Capability.PAYMENT_LOOKUP}
    host = PluginHost(["sandbox"])
    host.register(dataclasses.replace(PLUGIN, create_adapter=create_adapter, capabilities=capabilities))
    return host
