"""The PayPal adapter passes billplane's conformance kit against the fake PayPal.

How the kit's generic notions map to PayPal (docs/providers/paypal.md):
- the kit's "webhook secret" is the webhook id PayPal signs each delivery for: a webhook "signed
  with the wrong secret" is one PayPal delivered to another webhook, which verification refuses;
- a "payment method" is an approved subscription (PayPal's billing agreement), whose outstanding
  balance a charge captures; the fake's customer approves subscriptions at once here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime

import pytest
from billplane_paypal.credentials import PayPalCredentials

from billplane.plugins import AdapterContext, ProviderPlugin
from billplane.plugins.host import PluginHost
from billplane.testing import ConformanceSuite, WebhookBuilder
from tests.providers.paypal.conftest import WEBHOOK_ID, new_client_id
from tests.providers.paypal.fake_paypal import GOOD_SECRET, FakePayPal, sign_webhook
from tests.providers.paypal.payloads import subscription_event

pytest_plugins = ["billplane.testing"]


class TestPayPalConformance(ConformanceSuite):
    @pytest.fixture
    def provider_plugin(self) -> ProviderPlugin:
        return PluginHost.discover(["paypal"], environ={}).get("paypal")

    @pytest.fixture
    def conformance_paypal(self, paypal: FakePayPal) -> FakePayPal:
        paypal.auto_approve = True  # the kit pauses and cancels right after creating
        return paypal

    @pytest.fixture
    def adapter_context(self, conformance_paypal: FakePayPal) -> AdapterContext:
        return AdapterContext(
            tenant_id=1,
            account_id=7,
            mode="test",
            credentials=PayPalCredentials(client_id=new_client_id(), client_secret=GOOD_SECRET, webhook_id=WEBHOOK_ID),
            webhook_secret=WEBHOOK_ID,
            options={"api_base": conformance_paypal.base_url},
        )

    @pytest.fixture
    def bad_credentials(self) -> PayPalCredentials:
        return PayPalCredentials(client_id=new_client_id(), client_secret="not-the-secret", webhook_id=WEBHOOK_ID)

    @pytest.fixture
    def succeeding_payment_method(self, conformance_paypal: FakePayPal) -> str:
        return conformance_paypal.seed_active_subscription()

    @pytest.fixture
    def declining_payment_method(self, conformance_paypal: FakePayPal) -> str:
        subscription = conformance_paypal.seed_active_subscription()
        conformance_paypal.declining.add(subscription)
        return subscription

    @pytest.fixture
    def build_webhook(self) -> WebhookBuilder:
        def build(webhook_id: str, timestamp: datetime) -> tuple[Mapping[str, str], bytes]:
            body = json.dumps(subscription_event("BILLING.SUBSCRIPTION.ACTIVATED", "ACTIVE", at=timestamp)).encode()
            return sign_webhook(webhook_id, body, timestamp), body

        return build
