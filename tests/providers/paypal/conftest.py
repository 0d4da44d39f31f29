"""The fake PayPal (one per test process), adapters built through billplane's plugin host, and a
worker that calls the fake (the tests of billplane with the PayPal plugin end to end)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping

import pytest
from billplane_paypal.adapter import PayPalAdapter

from billplane.plugins import ProviderAdapter
from billplane.plugins.host import PluginHost
from billplane.runtime import Runtime
from tests.platform.sync_fakes import FAST, clear_jobs
from tests.providers.paypal.fake_paypal import GOOD_SECRET, FakePayPal, serve

WEBHOOK_ID = "1JE4291016473214C"
MakeAdapter = Callable[..., PayPalAdapter]


@pytest.fixture(scope="session")
def paypal_server() -> Iterator[FakePayPal]:
    fake = FakePayPal()
    server = serve(fake)
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def paypal(paypal_server: FakePayPal) -> Iterator[FakePayPal]:
    """The fake, with this test's hooks reset; the test fails if any request broke PayPal's specs."""
    fake = paypal_server
    with fake.lock:
        fake.faults.clear()
        fake.declining.clear()
        fake.clearing.clear()
        fake.refunds_clearing.clear()
        fake.auto_approve = False
        fake.empty_captures = False
        fake.unique_invoice_ids = False
        fake.webhooks = {WEBHOOK_ID}
        fake.token_expires_in = 32400
        seen, logged = len(fake.violations), len(fake.log)
    yield fake
    broken = fake.violations[seen:]
    assert not broken, "requests broke PayPal's specs:\n" + "\n".join(broken)
    # Every POST of every test carries a PayPal-Request-Id (the token request has no use for one).
    bare = [
        e.path
        for e in fake.log[logged:]
        if e.method == "POST" and e.path != "/v1/oauth2/token" and not e.headers.get("paypal-request-id")
    ]
    assert not bare, f"POSTs without PayPal-Request-Id: {bare}"


@pytest.fixture
async def worker(runtime: Runtime, paypal: FakePayPal, monkeypatch: pytest.MonkeyPatch) -> Runtime:
    """The test's runtime as a worker that calls the fake PayPal (the platform flow tests)."""
    monkeypatch.setenv("BILLPLANE_PROVIDER_PAYPAL_API_BASE", paypal.base_url)
    runtime.sync_options = FAST  # a subscription waiting for its customer looks again at once
    await clear_jobs(runtime)
    return runtime


def new_client_id() -> str:
    # Tokens are cached per app across adapters: a new client id per test keeps tests apart.
    return f"AZ-test-{uuid.uuid4().hex}"


@pytest.fixture
def make_adapter(paypal: FakePayPal) -> MakeAdapter:
    def make(
        *,
        client_id: str | None = None,
        client_secret: str = GOOD_SECRET,
        webhook_id: str = WEBHOOK_ID,
        mode: str = "test",
        options: Mapping[str, str] | None = None,
        tenant_id: int = 1,
    ) -> ProviderAdapter:
        settings = {"api_base": paypal.base_url, **(options or {})}
        environ = {f"BILLPLANE_PROVIDER_PAYPAL_{key.upper()}": value for key, value in settings.items()}
        host = PluginHost.discover(["paypal"], environ=environ)
        credentials = {"client_id": client_id or new_client_id(), "client_secret": client_secret}
        return host.adapter(
            "paypal",
            tenant_id=tenant_id,
            account_id=7,
            mode=mode,
            credentials={**credentials, "webhook_id": webhook_id},
        )

    return make  # type: ignore[return-value]
