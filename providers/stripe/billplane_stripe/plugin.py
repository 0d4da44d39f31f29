"""The entry point (``billplane.providers: stripe``): registers the Stripe provider with billplane."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import version

from billplane.plugins import AdapterContext, Capability, ProviderAdapter, ProviderPlugin, hookimpl
from billplane_stripe.adapter import StripeAdapter
from billplane_stripe.credentials import StripeCredentials


def create_adapter(context: AdapterContext) -> ProviderAdapter:
    if not isinstance(context.credentials, StripeCredentials):
        raise TypeError(f"stripe credentials must be StripeCredentials, not {type(context.credentials).__name__}")
    return StripeAdapter(context, context.credentials)


PLUGIN = ProviderPlugin(
    name="stripe",
    version=version("billplane-stripe"),
    description=(
        "Stripe: customers, products and prices, subscriptions, metered usage, payment methods, payments, refunds, "
        "webhooks."
    ),
    # Listed one by one, not frozenset(Capability): a capability added to billplane later must not
    # be declared here before the adapter implements it.
    capabilities=frozenset(
        {
            Capability.CUSTOMERS,
            Capability.CATALOG,
            Capability.SUBSCRIPTIONS,
            Capability.PAUSE,
            Capability.CHARGES,
            Capability.REFUNDS,
            Capability.WEBHOOKS,
            Capability.USAGE,
            Capability.PAYMENT_LOOKUP,
            Capability.PAYMENT_STATUS,
            Capability.REFUND_STATUS,
            Capability.REFUND_LOOKUP,
            Capability.UNDO_CANCEL,
            Capability.PAYMENT_METHODS,
            Capability.CATALOG_UPDATES,
            Capability.SUBSCRIPTION_METADATA,
        }
    ),
    pricing_models=frozenset({"flat", "per_seat", "tiered", "volume", "package", "metered"}),
    credentials_type=StripeCredentials,
    create_adapter=create_adapter,
    bills_subscriptions=True,  # Stripe invoices and charges its subscriptions itself
    secret_fields=frozenset({"secret_key"}),
)


@hookimpl
def billplane_register_providers(register: Callable[[ProviderPlugin], None]) -> None:
    register(PLUGIN)
