"""billplane's public plugin API: everything a provider distribution imports from billplane.

A provider package implements ``billplane_register_providers`` (marked with ``hookimpl``), and
registers a ``ProviderPlugin`` whose ``create_adapter`` returns an object honouring
``ProviderAdapter``. See docs/plugins/writing-a-provider.md.
"""

from __future__ import annotations

import pluggy

from billplane.plugins.amounts import minor_unit_exponent
from billplane.plugins.contract import (
    CUSTOMER_NOT_SYNCED,
    AdapterContext,
    BillingInterval,
    CancelUndoAdapter,
    Capability,
    CatalogUpdateAdapter,
    ChargeRequest,
    ChargeResult,
    ChargeStatus,
    CustomerData,
    EventType,
    InvoiceStatus,
    Mode,
    NextAction,
    PaymentLookupAdapter,
    PaymentMethodAdapter,
    PaymentStatusAdapter,
    PriceData,
    PricingModel,
    ProductData,
    ProrationPolicy,
    ProviderAdapter,
    ProviderEvent,
    ProviderInvoice,
    ProviderPaymentMethod,
    ProviderPlugin,
    ProviderRef,
    ProviderSubscription,
    RefundLookupAdapter,
    RefundRequest,
    RefundResult,
    RefundStatus,
    RefundStatusAdapter,
    SubscriptionChange,
    SubscriptionData,
    SubscriptionMetadataAdapter,
    SubscriptionStatus,
    TierData,
    UsageReport,
)
from billplane.plugins.errors import (
    InvalidCredentialsError,
    ProviderError,
    RetryableProviderError,
    UnknownProviderError,
    UnsupportedOperationError,
    WebhookVerificationError,
)
from billplane.plugins.hookspecs import PROJECT

hookimpl = pluggy.HookimplMarker(PROJECT)

__all__ = [
    "CUSTOMER_NOT_SYNCED",
    "AdapterContext",
    "BillingInterval",
    "CancelUndoAdapter",
    "Capability",
    "CatalogUpdateAdapter",
    "ChargeRequest",
    "ChargeResult",
    "ChargeStatus",
    "CustomerData",
    "EventType",
    "InvalidCredentialsError",
    "InvoiceStatus",
    "Mode",
    "NextAction",
    "PaymentLookupAdapter",
    "PaymentMethodAdapter",
    "PaymentStatusAdapter",
    "PriceData",
    "PricingModel",
    "ProductData",
    "ProrationPolicy",
    "ProviderAdapter",
    "ProviderError",
    "ProviderEvent",
    "ProviderInvoice",
    "ProviderPaymentMethod",
    "ProviderPlugin",
    "ProviderRef",
    "ProviderSubscription",
    "RefundLookupAdapter",
    "RefundRequest",
    "RefundResult",
    "RefundStatus",
    "RefundStatusAdapter",
    "RetryableProviderError",
    "SubscriptionChange",
    "SubscriptionData",
    "SubscriptionMetadataAdapter",
    "SubscriptionStatus",
    "TierData",
    "UnknownProviderError",
    "UnsupportedOperationError",
    "UsageReport",
    "WebhookVerificationError",
    "hookimpl",
    "minor_unit_exponent",
]
