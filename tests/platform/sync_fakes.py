"""A fake payment provider for sync and webhook tests, and a small AccountSource over it.

The fake keeps every object it creates by idempotency key, as Stripe does: the same key returns
the same object, and ``creations`` counts objects per key (a correct sync never makes it 2). Its
state can be served over loopback HTTP so that a worker in another process (the crash test)
talks to the same provider as the test.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import threading
import urllib.request
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

import anyio
import msgspec

from billplane.plugins import (
    AdapterContext,
    Capability,
    ChargeRequest,
    ChargeResult,
    CustomerData,
    PriceData,
    ProductData,
    ProviderError,
    ProviderEvent,
    ProviderPlugin,
    ProviderRef,
    ProviderSubscription,
    RefundRequest,
    RefundResult,
    RetryableProviderError,
    SubscriptionChange,
    SubscriptionData,
    UsageReport,
    WebhookVerificationError,
    hookimpl,
)
from billplane.plugins.host import PluginHost
from billplane.provider_accounts.masking import secret_strings
from billplane.provider_accounts.resolved import ResolvedAccount
from billplane.runtime import Runtime
from billplane.sync.options import SyncOptions

PROVIDER = "fake"
UNREACHABLE_HEADER = "x-fake-verifier-down"
UNREACHABLE_HEADER = "x-fake-verifier-down"
SIGNATURE_HEADER = "x-fake-signature"
_PREFIXES = {"ensure_customer": "cus", "ensure_product": "prod", "ensure_price": "price", "create_subscription": "sub"}


# Retries in tens of milliseconds, and few of them: what the sync tests wait for.
FAST = SyncOptions(base_delay=0.01, max_delay=0.05, not_ready_delay=0.0, lease_seconds=30.0, max_attempts=3)


async def as_worker(runtime: Runtime) -> Runtime:
    """The test's runtime, ready to drain with: no job left by an earlier test, and a row waiting
    for another (a subscription's create for its customer's) looked at again at once, not in 5 s,
    so that a drain runs it before it returns. With the production wait, a create that lost the
    race to its customer's ran during a later drain, and its provider id landed as a
    subscription.updated after whatever the test did next."""
    runtime.sync_options = dataclasses.replace(runtime.sync_options, not_ready_delay=0.0)
    await clear_jobs(runtime)
    return runtime


class FakeCredentials(msgspec.Struct, forbid_unknown_fields=True):
    api_key: str
    server: str | None = None  # a loopback URL: talk to a FakeServer instead of in-memory state


@dataclass
class FakeState:
    """The provider's side: objects by idempotency key, calls made, failures to inject."""

    by_key: dict[str, str] = field(default_factory=dict)
    creations: Counter[str] = field(default_factory=Counter)
    calls: list[tuple[str, str]] = field(default_factory=list)  # (method, idempotency key)
    payloads: dict[str, dict[str, Any]] = field(default_factory=dict)  # provider id -> last data sent
    # Errors for the next calls, in order: ("retryable", message, retry_after) or ("permanent", message).
    failures: list[tuple[Any, ...]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def call(self, method: str, key: str, payload: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.calls.append((method, key))
            if self.failures:
                failure = self.failures.pop(0)
                return {"error": list(failure)}
            prefix = _PREFIXES.get(method)
            if prefix is None:  # update/delete: nothing created
                self.payloads[payload.get("provider_id", key)] = payload
                return {"provider_id": payload.get("provider_id")}
            if key not in self.by_key:
                self.by_key[key] = f"{prefix}_{len(self.by_key) + 1}"
                self.creations[key] += 1
            self.payloads[self.by_key[key]] = payload
            return {"provider_id": self.by_key[key]}

    def created(self, method: str) -> list[str]:
        return [key for call, key in self.calls if call == method]


class FakeServer:
    """FakeState behind a loopback HTTP endpoint (POST /call with {method, key, payload})."""

    def __init__(self, state: FakeState) -> None:
        fake = state

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                answer = json.dumps(fake.call(body["method"], body["key"], body["payload"])).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/call"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class FakeAdapter:
    def __init__(self, context: AdapterContext, state: FakeState | None) -> None:
        self.context = context
        self.state = state
        credentials = context.credentials
        assert isinstance(credentials, FakeCredentials)
        self.server = credentials.server

    async def _call(self, method: str, key: str, payload: dict[str, Any]) -> str:
        if self.server is not None:
            server = self.server
            body = json.dumps({"method": method, "key": key, "payload": payload}).encode()

            def post() -> dict[str, Any]:
                request = urllib.request.Request(server, data=body, method="POST")  # noqa: S310 - loopback
                with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                    answer: dict[str, Any] = json.loads(response.read())
                    return answer

            answer = await anyio.to_thread.run_sync(post)
        else:
            assert self.state is not None
            answer = self.state.call(method, key, payload)
        if "error" in answer:
            kind, message, *rest = answer["error"]
            if kind == "retryable":
                raise RetryableProviderError(message, retry_after=rest[0] if rest else None)
            raise ProviderError(message, code="fake_error")
        return str(answer["provider_id"])

    async def check_credentials(self) -> None:
        return None

    async def ensure_customer(self, customer: CustomerData, *, idempotency_key: str) -> ProviderRef:
        data = msgspec.to_builtins(customer)
        return ProviderRef(provider_id=await self._call("ensure_customer", idempotency_key, data))

    async def update_customer(self, provider_customer_id: str, customer: CustomerData, *, idempotency_key: str) -> None:
        data = msgspec.to_builtins(customer) | {"provider_id": provider_customer_id}
        await self._call("update_customer", idempotency_key, data)

    async def delete_customer(self, provider_customer_id: str, *, idempotency_key: str) -> None:
        await self._call("delete_customer", idempotency_key, {"provider_id": provider_customer_id, "deleted": True})

    async def ensure_product(self, product: ProductData, *, idempotency_key: str) -> ProviderRef:
        data = msgspec.to_builtins(product)
        return ProviderRef(provider_id=await self._call("ensure_product", idempotency_key, data))

    async def ensure_price(self, price: PriceData, *, idempotency_key: str) -> ProviderRef:
        data = msgspec.to_builtins(price)
        return ProviderRef(provider_id=await self._call("ensure_price", idempotency_key, data))

    async def create_subscription(
        self, subscription: SubscriptionData, *, idempotency_key: str
    ) -> ProviderSubscription:
        data = msgspec.to_builtins(subscription)
        provider_id = await self._call("create_subscription", idempotency_key, data)
        return ProviderSubscription(provider_id=provider_id, status="active")

    async def update_subscription(
        self, provider_subscription_id: str, change: SubscriptionChange, *, idempotency_key: str
    ) -> ProviderSubscription:
        data = msgspec.to_builtins(change) | {"provider_id": provider_subscription_id}
        await self._call("update_subscription", idempotency_key, data)
        return ProviderSubscription(provider_id=provider_subscription_id, status="active", quantity=change.quantity)

    async def cancel_subscription(
        self, provider_subscription_id: str, *, at_period_end: bool, idempotency_key: str
    ) -> ProviderSubscription:
        data = {"provider_id": provider_subscription_id, "at_period_end": at_period_end}
        await self._call("cancel_subscription", idempotency_key, data)
        return ProviderSubscription(provider_id=provider_subscription_id, status="canceled")

    async def undo_cancel(self, provider_subscription_id: str, *, idempotency_key: str) -> ProviderSubscription:
        await self._call("undo_cancel", idempotency_key, {"provider_id": provider_subscription_id})
        return ProviderSubscription(provider_id=provider_subscription_id, status="active")

    async def pause_subscription(self, provider_subscription_id: str, *, idempotency_key: str) -> ProviderSubscription:
        await self._call("pause_subscription", idempotency_key, {"provider_id": provider_subscription_id})
        return ProviderSubscription(provider_id=provider_subscription_id, status="paused")

    async def resume_subscription(self, provider_subscription_id: str, *, idempotency_key: str) -> ProviderSubscription:
        await self._call("resume_subscription", idempotency_key, {"provider_id": provider_subscription_id})
        return ProviderSubscription(provider_id=provider_subscription_id, status="active")

    async def charge(self, request: ChargeRequest, *, idempotency_key: str) -> ChargeResult:
        raise NotImplementedError

    async def refund(self, request: RefundRequest, *, idempotency_key: str) -> RefundResult:
        raise NotImplementedError

    async def report_usage(self, usage: UsageReport, *, idempotency_key: str) -> None:
        # Kept under the record's id, as Stripe keeps a meter event under its identifier.
        data = msgspec.to_builtins(usage) | {"provider_id": f"usage_{usage.usage_record_id}"}
        await self._call("report_usage", idempotency_key, data)

    async def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[ProviderEvent]:
        if UNREACHABLE_HEADER in headers:  # as a provider whose verification API is down
            raise RetryableProviderError("the verification service did not answer")
        secret = self.context.webhook_secret
        if secret is None or not hmac.compare_digest(headers.get(SIGNATURE_HEADER, ""), sign(secret, body)):
            raise WebhookVerificationError("bad signature")
        try:
            return msgspec.json.decode(body, type=list[ProviderEvent])
        except msgspec.ValidationError as exc:
            raise WebhookVerificationError(f"malformed body: {exc}") from exc


def fake_plugin(state: FakeState | None, name: str = PROVIDER) -> ProviderPlugin:
    return ProviderPlugin(
        name=name,
        version="0",
        description="In-memory (or loopback) fake provider for tests",
        # No payment_lookup: the fake keeps no charges to look up.
        capabilities=frozenset(Capability) - {Capability.PAYMENT_LOOKUP, Capability.PAYMENT_METHODS},
        pricing_models=frozenset({"flat", "per_seat", "tiered", "volume", "package", "metered"}),
        credentials_type=FakeCredentials,
        create_adapter=lambda context: FakeAdapter(context, state),
        secret_fields=frozenset({"api_key"}),
    )


class Registration:
    """A pluggy registration of ``plugins`` for a plugin host (``PluginHost.add_plugin``)."""

    def __init__(self, plugins: list[ProviderPlugin]) -> None:
        self.plugins = plugins

    @hookimpl
    def billplane_register_providers(self, register: Any) -> None:
        for plugin in self.plugins:
            register(plugin)


def register_fakes(host: PluginHost, state: FakeState | None, names: tuple[str, ...] = (PROVIDER,)) -> None:
    host.add_plugin(Registration([fake_plugin(state, name) for name in names]), "tests-fake-providers")


# A fake provider that bills the subscriptions it holds, as Stripe and PayPal do: their periods,
# quantities and statuses are its word (``provider_state``), and billplane's billing run skips them.
BILLED = "billed"


def register_billed_fake(host: PluginHost, state: FakeState | None) -> None:
    if BILLED not in host.names():
        plugin = dataclasses.replace(fake_plugin(state, BILLED), bills_subscriptions=True)
        host.add_plugin(Registration([plugin]), "tests-billed-fake-provider")


@dataclass(frozen=True)
class AccountRow:
    id: int
    tenant_id: int
    tenant_schema: str
    provider: str = PROVIDER
    is_default: bool = True
    webhook_secret: str = "whsec_test"
    server: str | None = None


class StaticAccounts:
    """An AccountSource over accounts the test declares; adapters come from the plugin host."""

    def __init__(self, host: PluginHost, rows: list[AccountRow] | None = None) -> None:
        self.host = host
        self.rows = {row.id: row for row in rows or []}
        self.default_lookups = 0

    def add(self, row: AccountRow) -> AccountRow:
        self.rows[row.id] = row
        return row

    def _resolved(self, row: AccountRow) -> ResolvedAccount:
        adapter = self.host.adapter(
            row.provider,
            tenant_id=row.tenant_id,
            account_id=row.id,
            mode="test",
            credentials={"api_key": "sk_test_fake", "server": row.server},
            webhook_secret=row.webhook_secret,
        )
        return ResolvedAccount(
            id=row.id,
            tenant_id=row.tenant_id,
            tenant_schema=row.tenant_schema,
            provider=row.provider,
            mode="test",
            is_default=row.is_default,
            adapter=adapter,
            bills_subscriptions=self.host.get(row.provider).bills_subscriptions,
            secrets=tuple(secret_strings({"api_key": "sk_test_fake"}, row.webhook_secret)),
        )

    async def account(self, account_id: int) -> ResolvedAccount | None:
        row = self.rows.get(account_id)
        return None if row is None else self._resolved(row)

    async def default_account_ids(self, _session: Any, tenant_id: int) -> tuple[int, ...]:
        return tuple(account.id for account in await self.default_accounts(tenant_id))

    async def live_account_ids(self, _session: Any, tenant_id: int, account_ids: Sequence[int]) -> set[int]:
        return {id_ for id_ in account_ids if id_ in self.rows and self.rows[id_].tenant_id == tenant_id}

    async def default_accounts(self, tenant_id: int) -> list[ResolvedAccount]:
        self.default_lookups += 1
        return [self._resolved(row) for row in self.rows.values() if row.tenant_id == tenant_id and row.is_default]


async def clear_jobs(runtime: Any) -> None:
    """Forget jobs left by earlier tests (the queue is shared by every test of this database)."""
    from sqlalchemy import text  # noqa: PLC0415

    async with runtime.database.transaction() as connection:
        # procrastinate's triggers name their tables without a schema: run in the queue's search_path.
        await connection.execute(text("SELECT set_config('search_path', 'billplane_jobs', true)"))
        await connection.execute(text("DELETE FROM procrastinate_jobs"))


async def wait_for_jobs(runtime: Any, count: int, *, within: float = 5.0) -> list[dict[str, Any]]:
    """The queue's waiting jobs, once at least ``count`` are there (the doorbell defers after the response)."""
    from sqlalchemy import text  # noqa: PLC0415

    with anyio.fail_after(within):
        while True:
            async with runtime.database.transaction() as connection:
                rows = await connection.execute(
                    text(
                        "SELECT task_name, args FROM billplane_jobs.procrastinate_jobs "
                        "WHERE status = 'todo' ORDER BY id"
                    )
                )
                jobs = [{"task": task, **args} for task, args in rows.all()]
            if len(jobs) >= count:
                return jobs
            await anyio.sleep(0.02)


async def jobs_due(runtime: Any) -> int:
    from sqlalchemy import text  # noqa: PLC0415

    async with runtime.database.transaction() as connection:
        count = await connection.scalar(
            text(
                "SELECT count(*) FROM billplane_jobs.procrastinate_jobs "
                "WHERE status = 'todo' AND (scheduled_at IS NULL OR scheduled_at <= now())"
            )
        )
    return int(count or 0)


async def next_job_in(runtime: Any, *, within: float) -> float | None:
    """Seconds until the next job waiting in the queue is due, if one is due within ``within``."""
    from sqlalchemy import text  # noqa: PLC0415

    async with runtime.database.transaction() as connection:
        wait = await connection.scalar(
            text(
                "SELECT extract(epoch FROM min(scheduled_at) - now()) "
                "FROM billplane_jobs.procrastinate_jobs WHERE status = 'todo' "
                "AND scheduled_at <= now() + make_interval(secs => :within)"
            ),
            {"within": within},
        )
    return None if wait is None else max(float(wait), 0.0)


async def drain(runtime: Any, *, sweep: bool = True, rounds: int = 10, soon: float = 1.0) -> None:
    """Run the jobs the test queued (and their follow-ups) until none is due. One ``wait=False``
    worker run stops as soon as one of its slots finds the queue empty, even while another slot's
    job is still deferring a follow-up. A follow-up due within ``soon`` seconds (a retry after the
    test's short backoff) is waited for and run too.

    The worker's cron ticks are kept out: a worker run defers each periodic task (billing run,
    dunning, ...) the first time it sees its minute, so a drain that crossed a minute boundary
    dunned the test's open invoices, and the outcome hung on the clock. Tests run those jobs
    themselves."""
    from procrastinate.periodic import PeriodicRegistry  # noqa: PLC0415

    from billplane.sync.sweep import Sweeper  # noqa: PLC0415
    from billplane.sync.worker import run_worker  # noqa: PLC0415

    if sweep:
        await Sweeper(runtime.database, runtime.jobs, runtime.sync_options, grace_seconds=0).sweep()
    app = runtime.jobs.app
    registry, app.periodic_registry = app.periodic_registry, PeriodicRegistry()  # type: ignore[no-untyped-call]
    try:
        for _ in range(rounds):
            await run_worker(runtime, wait=False)
            if await jobs_due(runtime):
                continue
            wait = await next_job_in(runtime, within=soon)
            if wait is None:
                return
            await anyio.sleep(wait + 0.01)
    finally:
        app.periodic_registry = registry
    raise AssertionError(f"jobs still due after {rounds} worker runs")
