"""The sandbox passes billplane's conformance kit, found through its installed entry point."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import pytest
from billplane_sandbox import events, payment_methods
from billplane_sandbox.credentials import SandboxCredentials

from billplane.plugins import AdapterContext, ProviderPlugin
from billplane.plugins.host import PluginHost
from billplane.testing import ConformanceSuite, WebhookBuilder

pytest_plugins = ["billplane.testing"]

WEBHOOK_SECRET = "whsec_conformance"


class TestSandboxConformance(ConformanceSuite):
    @pytest.fixture
    def provider_plugin(self) -> ProviderPlugin:
        return PluginHost.discover(["sandbox"], environ={}).get("sandbox")

    @pytest.fixture
    def adapter_context(self) -> AdapterContext:
        return AdapterContext(
            tenant_id=1,
            account_id=41,
            mode="test",
            credentials=SandboxCredentials(api_key="sk_sandbox_conformance"),
            webhook_secret=WEBHOOK_SECRET,
        )

    @pytest.fixture
    def bad_credentials(self) -> SandboxCredentials:
        return SandboxCredentials(api_key="sk_live_not_a_sandbox_key")

    @pytest.fixture
    def succeeding_payment_method(self) -> str:
        return payment_methods.SUCCEEDS

    @pytest.fixture
    def declining_payment_method(self) -> str:
        return payment_methods.DECLINED

    @pytest.fixture
    def build_webhook(self) -> WebhookBuilder:
        def build(secret: str, timestamp: datetime) -> tuple[Mapping[str, str], bytes]:
            event = events.payment_succeeded("sbx_pay_conformance", occurred_at=timestamp)
            return events.sign(event, secret, timestamp=timestamp)

        return build
