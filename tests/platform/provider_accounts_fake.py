"""A fake payment provider for the provider-account tests, registered through the plugin host.

Its credentials are an ``api_key`` (a secret field) and a ``region``. ``check_credentials``
accepts keys starting with ``accept`` (``good_``), answers with a transient error while ``down``
is set, raises outside the contract while ``broken`` is set, and refuses anything else with a
message that echoes the key, as a careless provider would: billplane must scrub it. Every
adapter it builds is recorded in ``contexts``.
"""

# ruff: noqa: ARG002 - the operations it does not support take the contract's parameters and use none

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import msgspec
from litestar import Litestar

from billplane.plugins import (
    AdapterContext,
    Capability,
    ChargeRequest,
    ChargeResult,
    CustomerData,
    InvalidCredentialsError,
    PriceData,
    ProductData,
    ProviderEvent,
    ProviderPlugin,
    ProviderRef,
    ProviderSubscription,
    RefundRequest,
    RefundResult,
    RetryableProviderError,
    SubscriptionChange,
    SubscriptionData,
    UnsupportedOperationError,
    UsageReport,
)
from billplane.plugins.host import PluginHost


class FakeCredentials(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    api_key: Annotated[str, msgspec.Meta(min_length=8)]
    region: Literal["eu", "us"] = "eu"


class FakeAdapter:
    def __init__(self, context: AdapterContext, provider: FakeProvider) -> None:
        self.context = context
        self._provider = provider

    async def check_credentials(self) -> None:
        credentials = self.context.credentials
        assert isinstance(credentials, FakeCredentials)
        if self._provider.broken:
            raise RuntimeError(f"unexpected state for {credentials.api_key}")
        if self._provider.down:
            raise RetryableProviderError("the fake provider is down", retry_after=2.5)
        if not credentials.api_key.startswith(self._provider.accept):
            raise InvalidCredentialsError(f"no such key: {credentials.api_key}", code="invalid_api_key")

    def _unsupported(self, operation: str) -> UnsupportedOperationError:
        return UnsupportedOperationError(operation, "the fake provider only checks credentials")

    async def ensure_customer(self, customer: CustomerData, *, idempotency_key: str) -> ProviderRef:
        raise self._unsupported("ensure_customer")

    async def update_customer(self, provider_customer_id: str, customer: CustomerData, *, idempotency_key: str) -> None:
        raise self._unsupported("update_customer")

    async def delete_customer(self, provider_customer_id: str, *, idempotency_key: str) -> None:
        raise self._unsupported("delete_customer")

    async def ensure_product(self, product: ProductData, *, idempotency_key: str) -> ProviderRef:
        raise self._unsupported("ensure_product")

    async def ensure_price(self, price: PriceData, *, idempotency_key: str) -> ProviderRef:
        raise self._unsupported("ensure_price")

    async def create_subscription(
        self, subscription: SubscriptionData, *, idempotency_key: str
    ) -> ProviderSubscription:
        raise self._unsupported("create_subscription")

    async def update_subscription(
        self, provider_subscription_id: str, change: SubscriptionChange, *, idempotency_key: str
    ) -> ProviderSubscription:
        raise self._unsupported("update_subscription")

    async def cancel_subscription(
        self, provider_subscription_id: str, *, at_period_end: bool, idempotency_key: str
    ) -> ProviderSubscription:
        raise self._unsupported("cancel_subscription")

    async def pause_subscription(self, provider_subscription_id: str, *, idempotency_key: str) -> ProviderSubscription:
        raise self._unsupported("pause_subscription")

    async def resume_subscription(self, provider_subscription_id: str, *, idempotency_key: str) -> ProviderSubscription:
        raise self._unsupported("resume_subscription")

    async def charge(self, request: ChargeRequest, *, idempotency_key: str) -> ChargeResult:
        raise self._unsupported("charge")

    async def refund(self, request: RefundRequest, *, idempotency_key: str) -> RefundResult:
        raise self._unsupported("refund")

    async def report_usage(self, usage: UsageReport, *, idempotency_key: str) -> None:
        raise self._unsupported("report_usage")

    async def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[ProviderEvent]:
        raise self._unsupported("parse_webhook")


@dataclass
class FakeProvider:
    name: str = "fake"
    accept: str = "good_"
    down: bool = False
    broken: bool = False
    contexts: list[AdapterContext] = field(default_factory=list)

    def plugin(self) -> ProviderPlugin:
        def create_adapter(context: AdapterContext) -> FakeAdapter:
            self.contexts.append(context)
            return FakeAdapter(context, self)

        return ProviderPlugin(
            name=self.name,
            version="0.0.1",
            description="A fake provider for tests",
            capabilities=frozenset({Capability.CUSTOMERS}),
            pricing_models=frozenset({"flat"}),
            credentials_type=FakeCredentials,
            create_adapter=create_adapter,
            secret_fields=frozenset({"api_key"}),
        )

    def install(self, target: Litestar | PluginHost) -> FakeProvider:
        """Register on an app's plugin host (or a host), unless a provider of this name is there already."""
        host: PluginHost = target.state.runtime.plugins if isinstance(target, Litestar) else target
        if self.name not in host.names():
            host.register(self.plugin())
        return self


def good_body(**fields: Any) -> dict[str, Any]:
    """A create body the fake provider accepts."""
    return {"provider": "fake", "mode": "test", "credentials": {"api_key": "good_0123456789abcdef"}} | fields
