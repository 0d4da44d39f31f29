"""The module the ``billplane.providers`` entry point names: it registers the provider."""

from __future__ import annotations

from collections.abc import Callable

from billplane.plugins import AdapterContext, Capability, ProviderAdapter, ProviderPlugin, hookimpl

from billplane_example.adapter import ExampleCredentials, ExamplePayAdapter


def create_adapter(context: AdapterContext) -> ProviderAdapter:
    if not isinstance(context.credentials, ExampleCredentials):
        raise TypeError("Example Pay credentials must be ExampleCredentials")
    return ExamplePayAdapter(context, context.credentials)


PLUGIN = ProviderPlugin(
    name="example",
    version="0.1.0",
    description="Example Pay: customers, products, flat and per-seat prices, charges, refunds, webhooks.",
    # Example Pay has no subscriptions: billplane will never ask for them, and the adapter refuses.
    capabilities=frozenset(
        {Capability.CUSTOMERS, Capability.CATALOG, Capability.CHARGES, Capability.REFUNDS, Capability.WEBHOOKS}
    ),
    pricing_models=frozenset({"flat", "per_seat"}),
    credentials_type=ExampleCredentials,
    create_adapter=create_adapter,
    secret_fields=frozenset({"api_token"}),
)


@hookimpl
def billplane_register_providers(register: Callable[[ProviderPlugin], None]) -> None:
    register(PLUGIN)
