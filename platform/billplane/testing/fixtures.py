"""The kit's fixtures. The first ones describe your provider: override them (in your
``ConformanceSuite`` subclass or a conftest.py); the others have defaults you may override."""

from __future__ import annotations

import inspect
import itertools
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import NoReturn

import msgspec
import pytest

from billplane.plugins import AdapterContext, ProviderAdapter, ProviderPlugin
from billplane.testing.webhooks import WebhookBuilder


def _override(name: str, what: str) -> NoReturn:
    pytest.fail(
        f"billplane.testing: override the `{name}` fixture in your ConformanceSuite subclass: {what} "
        "(see docs/plugins/conformance-kit.md)",
        pytrace=False,
    )


@pytest.fixture
def provider_plugin() -> ProviderPlugin:
    """The ``ProviderPlugin`` under test (``billplane.testing.load_plugin(your_hooks_module, name)``)."""
    _override("provider_plugin", "return the ProviderPlugin your hook registers")


@pytest.fixture
def adapter_context() -> AdapterContext:
    """An ``AdapterContext`` with working credentials, a webhook secret and options pointing at your fake API."""
    _override("adapter_context", "return an AdapterContext whose options point at a fake of your provider's API")


@pytest.fixture
def bad_credentials() -> msgspec.Struct:
    """Credentials of your ``credentials_type`` that your provider (fake) refuses."""
    _override("bad_credentials", "return credentials your provider refuses")


@pytest.fixture
def succeeding_payment_method() -> str:
    """A payment method token whose charge succeeds at once (needed with the ``charges`` capability)."""
    _override("succeeding_payment_method", "return a payment method token that is charged successfully")


@pytest.fixture
def declining_payment_method() -> str:
    """A payment method token whose charge is declined (needed with the ``charges`` capability)."""
    _override("declining_payment_method", "return a payment method token that is declined")


@pytest.fixture
def build_webhook() -> WebhookBuilder:
    """``(secret, timestamp) -> (headers, body)`` of a valid webhook (needed with the ``webhooks`` capability)."""
    _override("build_webhook", "return a function that signs a valid webhook with a secret at a time")


@pytest.fixture
def webhook_tolerance() -> timedelta | None:
    """How old a webhook may be; ``None`` if your provider's scheme has no timestamp (skips that check)."""
    return timedelta(minutes=5)


@pytest.fixture
def currency() -> str:
    """The currency of the kit's prices, charges and refunds."""
    return "USD"


@pytest.fixture
def new_key() -> Callable[[], str]:
    """A new idempotency key on every call, unique across runs (fakes may keep state)."""
    run = uuid.uuid4().hex[:12]
    counter = itertools.count(1)
    return lambda: f"conformance-{run}-{next(counter)}"


@pytest.fixture
async def adapter(provider_plugin: ProviderPlugin, adapter_context: AdapterContext) -> AsyncIterator[ProviderAdapter]:
    """A new adapter for ``adapter_context``; closed afterwards if it has an ``aclose()``."""
    created = provider_plugin.create_adapter(adapter_context)
    yield created
    close = getattr(created, "aclose", None)
    if callable(close):
        result = close()
        if inspect.isawaitable(result):
            await result
