"""billplane-stripe passes billplane's conformance kit against the fake Stripe, found through its entry point."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import pytest
from billplane_stripe.credentials import StripeCredentials

from billplane.plugins import AdapterContext, ProviderPlugin
from billplane.plugins.host import PluginHost
from billplane.testing import ConformanceSuite, WebhookBuilder
from tests.providers.stripe.conftest import MakeContext
from tests.providers.stripe.fake_stripe import events, objects, resources

pytest_plugins = ["billplane.testing"]


class TestStripeConformance(ConformanceSuite):
    @pytest.fixture
    def provider_plugin(self) -> ProviderPlugin:
        return PluginHost.discover(["stripe"], environ={}).get("stripe")

    @pytest.fixture
    def adapter_context(self, make_context: MakeContext) -> AdapterContext:
        return make_context()

    @pytest.fixture
    def bad_credentials(self) -> StripeCredentials:
        return StripeCredentials(secret_key="sk_test_revoked_0000000000000000")

    @pytest.fixture
    def succeeding_payment_method(self) -> str:
        return resources.SUCCEEDS

    @pytest.fixture
    def declining_payment_method(self) -> str:
        return next(iter(resources.DECLINES))

    @pytest.fixture
    def build_webhook(self) -> WebhookBuilder:
        def build(secret: str, timestamp: datetime) -> tuple[Mapping[str, str], bytes]:
            intent = objects.fixture("payment_intent", id=objects.new_id("pi"), status="succeeded")
            event = events.event("payment_intent.succeeded", intent, created=int(timestamp.timestamp()))
            return events.sign(event, [secret], timestamp)

        return build
