"""Every tenant model, imported so ``tenant_metadata`` is complete (provisioning, autogenerate)."""

from __future__ import annotations

from billplane.audit.models import AuditEvent
from billplane.billing.models import BillingSettings, InvoiceCounter, InvoiceItem, TestClock
from billplane.catalog.models import Plan, PlanFeature, PricingTier, Product
from billplane.customers.models import Customer, ProviderCustomer
from billplane.db.base import TenantBase
from billplane.events.models import Event, WebhookDelivery, WebhookEndpoint
from billplane.idempotency.models import IdempotencyKey
from billplane.invoices.models import Invoice, InvoiceLine
from billplane.payments.models import Payment, PaymentMethod, Refund
from billplane.subscriptions.models import Subscription, UsageRecord
from billplane.sync.models import OutboxEntry, ProviderPlan
from billplane.webhooks.models import StoredEvent

tenant_metadata = TenantBase.metadata

__all__ = [
    "AuditEvent",
    "BillingSettings",
    "Customer",
    "Event",
    "IdempotencyKey",
    "Invoice",
    "InvoiceCounter",
    "InvoiceItem",
    "InvoiceLine",
    "OutboxEntry",
    "Payment",
    "PaymentMethod",
    "Plan",
    "PlanFeature",
    "PricingTier",
    "Product",
    "ProviderCustomer",
    "ProviderPlan",
    "Refund",
    "StoredEvent",
    "Subscription",
    "TestClock",
    "UsageRecord",
    "WebhookDelivery",
    "WebhookEndpoint",
    "tenant_metadata",
]
