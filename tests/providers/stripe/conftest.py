"""A fake Stripe per test session (one per xdist worker), reset for every test, and adapters pointed at it."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator

import pytest
from billplane_stripe.adapter import StripeAdapter
from billplane_stripe.credentials import StripeCredentials

from billplane.plugins import AdapterContext, Mode
from tests.providers.stripe.fake_stripe.server import FakeStripe, FakeStripeServer

SECRET_KEY = "sk_test_billplane_fake_" + secrets.token_hex(8)
# Generated per run: webhook tests sign with secrets nobody else knows.
WEBHOOK_SECRET = "whsec_" + secrets.token_hex(16)
PREVIOUS_WEBHOOK_SECRET = "whsec_" + secrets.token_hex(16)
TENANT_ID = 7

MakeContext = Callable[..., AdapterContext]


@pytest.fixture(scope="session")
def fake_stripe_server() -> Iterator[FakeStripe]:
    fake = FakeStripe(api_keys={SECRET_KEY})
    server = FakeStripeServer(fake)
    server.start()
    yield fake
    server.stop()


@pytest.fixture
def fake_stripe(fake_stripe_server: FakeStripe) -> Iterator[FakeStripe]:
    """The fake, emptied; the test fails if the adapter sent anything Stripe's spec does not allow."""
    fake_stripe_server.reset()
    yield fake_stripe_server
    violations = list(fake_stripe_server.violations)
    assert not violations, "requests Stripe's API would refuse:\n" + "\n".join(violations)


@pytest.fixture
def make_context(fake_stripe: FakeStripe) -> MakeContext:
    def make(
        *,
        secret_key: str = SECRET_KEY,
        mode: Mode = "test",
        webhook_secret: str | None = WEBHOOK_SECRET,
        previous_webhook_secret: str | None = None,
        timeout: float | None = None,
    ) -> AdapterContext:
        options = {"api_base": fake_stripe.url}
        if timeout is not None:
            options["timeout"] = str(timeout)
        return AdapterContext(
            tenant_id=TENANT_ID,
            account_id=11,
            mode=mode,
            credentials=StripeCredentials(secret_key=secret_key),
            webhook_secret=webhook_secret,
            previous_webhook_secret=previous_webhook_secret,
            options=options,
        )

    return make


MakeAdapter = Callable[..., StripeAdapter]


@pytest.fixture
def make_adapter(make_context: MakeContext) -> MakeAdapter:
    def make(**kwargs: object) -> StripeAdapter:
        context = make_context(**kwargs)
        assert isinstance(context.credentials, StripeCredentials)
        return StripeAdapter(context, context.credentials)

    return make


@pytest.fixture
def stripe_adapter(make_adapter: MakeAdapter) -> StripeAdapter:
    return make_adapter()
