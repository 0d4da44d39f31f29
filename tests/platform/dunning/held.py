"""Shared steps of the tests of payments a provider holds as pending: the real sandbox with its
``pending_*`` tokens and no webhook URL, so that the outcome never arrives by webhook, as when
the provider's webhook is lost."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec
from billplane_sandbox import events
from billplane_sandbox.adapter import SandboxAdapter
from billplane_sandbox.plugin import PLUGIN

from billplane.plugins import AdapterContext, Capability, ChargeResult, ProviderAdapter, RetryableProviderError
from billplane.plugins.host import PluginHost
from billplane.runtime import Runtime
from tests.platform.dunning.helpers import Client, Setup, execute, one, sandbox_customer, subscribe
from tests.platform.dunning.stuck import INVOICE, PAYMENT
from tests.platform.invoices.helpers import WEBHOOK_SECRET
from tests.platform.sync_fakes import drain

Answer = Callable[[str], ChargeResult | None]


@dataclass
class Held:
    setup: Setup
    invoice: int
    payment: int
    provider_payment_id: str
    asked: list[str] = field(default_factory=list)  # charge_status calls about this tenant's charges


def held_host(
    held: Held | None = None,
    *,
    settles_after: float = 0.0,
    capable: bool = True,
    answer: Answer | None = None,
    down: bool = False,
) -> PluginHost:
    """The real sandbox whose pending charges settle ``settles_after`` seconds after they were made;
    without the ``payment_status`` capability (``capable=False``: then ``charge_status`` must never
    be called), answering ``answer(id)`` instead of the sandbox, or unreachable (``down``). Calls
    about ``held``'s tenant's charges are recorded in ``held.asked``."""

    class Sandbox(SandboxAdapter):
        def __init__(self, context: AdapterContext) -> None:
            options = {**context.options, "pending_delay_seconds": str(settles_after)}
            super().__init__(msgspec.structs.replace(context, options=options), context.credentials)  # type: ignore[arg-type]
            self.tenant_id = context.tenant_id

        async def charge_status(self, provider_payment_id: str) -> ChargeResult | None:
            if not capable:
                raise AssertionError("charge_status called without the payment_status capability")
            if held is not None and self.tenant_id == held.setup.tenant.id:
                held.asked.append(provider_payment_id)
            if down:
                raise RetryableProviderError("connection refused")
            if answer is not None:
                return answer(provider_payment_id)
            return await super().charge_status(provider_payment_id)

    def create_adapter(context: AdapterContext) -> ProviderAdapter:
        return Sandbox(context)

    capabilities = PLUGIN.capabilities if capable else PLUGIN.capabilities - {Capability.PAYMENT_STATUS}
    host = PluginHost(["sandbox"])
    host.register(dataclasses.replace(PLUGIN, create_adapter=create_adapter, capabilities=capabilities))
    return host


def use(client: Client, worker: Runtime, host: PluginHost) -> None:
    """``host`` for the worker and for the API (its own runtime in some set-ups)."""
    worker.plugins = host
    app_runtime: Runtime = client.app.state.runtime
    app_runtime.plugins = host


async def held_payment(client: Client, admin_headers: dict[str, str], worker: Runtime, token: str) -> Held:
    """A subscription's first invoice, charged with a ``pending_*`` token: the sandbox holds the
    charge as pending, and no webhook will settle it."""
    use(client, worker, held_host(settles_after=3600))
    setup = await sandbox_customer(client, admin_headers, worker, token, prefix="held")
    await subscribe(client, setup, trial_days=0)
    await drain(worker)
    payment = await one(worker, setup.tenant, PAYMENT)
    assert (payment["status"], payment["provider_payment_id"][:8]) == ("pending", "sbx_pay_")
    invoice = await one(worker, setup.tenant, INVOICE)
    assert invoice["status"] == "open"
    return Held(setup, invoice["id"], payment["id"], payment["provider_payment_id"])


async def made_ago(worker: Runtime, held: Held, *, minutes: float, checked_minutes: float | None = None) -> None:
    """The payment was created ``minutes`` ago (and last asked about ``checked_minutes`` ago)."""
    await execute(
        worker, held.setup.tenant,
        "UPDATE payments SET created_at = now() - make_interval(secs => :made), "
        "provider_checked_at = now() - make_interval(secs => CAST(:checked AS double precision)) WHERE id = :id",
        made=minutes * 60, checked=None if checked_minutes is None else checked_minutes * 60, id=held.payment,
    )  # fmt: skip


async def its_webhook_succeeded(client: Client, worker: Runtime, held: Held) -> None:
    """The sandbox's ``payment.succeeded`` for the held charge arrives after all, and is applied."""
    webhook = events.sign(events.payment_succeeded(held.provider_payment_id), WEBHOOK_SECRET)
    delivered = await client.post(
        f"/v1/webhooks/sandbox/{held.setup.account}", content=webhook.body, headers=webhook.headers
    )
    assert delivered.status_code == 200, delivered.text
    await drain(worker)
