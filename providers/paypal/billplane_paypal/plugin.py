"""The entry point (``billplane.providers: paypal``): the PayPal provider and its capabilities."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import version

from billplane.plugins import AdapterContext, Capability, ProviderAdapter, ProviderPlugin, hookimpl
from billplane_paypal.adapter import PayPalAdapter
from billplane_paypal.catalog import PRICING_MODELS
from billplane_paypal.credentials import SECRET_FIELDS, PayPalCredentials


def create_adapter(context: AdapterContext) -> ProviderAdapter:
    if not isinstance(context.credentials, PayPalCredentials):
        raise TypeError("PayPal credentials must be PayPalCredentials")
    return PayPalAdapter(context, context.credentials)


PLUGIN = ProviderPlugin(
    name="paypal",
    version=version("billplane-paypal"),
    description="PayPal: catalog products, billing plans, subscriptions the customer approves, refunds, webhooks",
    # customers are local references (PayPal has none); charges capture a subscription's
    # outstanding balance; no usage (PayPal plans cannot bill reported usage).
    capabilities=frozenset(
        {
            Capability.CUSTOMERS,
            Capability.CATALOG,
            Capability.SUBSCRIPTIONS,
            Capability.PAUSE,
            Capability.CHARGES,
            Capability.REFUNDS,
            Capability.WEBHOOKS,
            Capability.PAYMENT_STATUS,
            Capability.REFUND_STATUS,
            Capability.CATALOG_UPDATES,  # descriptions and plans' status only (adapter.update_product)
        }
    ),
    pricing_models=PRICING_MODELS,
    credentials_type=PayPalCredentials,
    create_adapter=create_adapter,
    bills_subscriptions=True,  # PayPal collects its subscriptions' payments itself
    secret_fields=SECRET_FIELDS,
)


@hookimpl
def billplane_register_providers(register: Callable[[ProviderPlugin], None]) -> None:
    register(PLUGIN)
