"""Example Pay passes billplane's conformance kit (run with ``pytest -p billplane.testing``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime

import pytest
from billplane.plugins import AdapterContext, ProviderPlugin
from billplane.testing import ConformanceSuite, WebhookBuilder, load_plugin

import billplane_example.plugin
from billplane_example import webhooks
from billplane_example.adapter import ExampleCredentials

GOOD_TOKEN = "ex_test_good"  # the fake accepts only this one (tests/conftest.py)


class TestExamplePayConformance(ConformanceSuite):
    @pytest.fixture
    def provider_plugin(self) -> ProviderPlugin:
        # Registered through billplane's plugin host exactly as the entry point would be.
        return load_plugin(billplane_example.plugin, "example")

    @pytest.fixture
    def adapter_context(self, fake_example_pay: str) -> AdapterContext:
        return AdapterContext(
            tenant_id=1,
            account_id=1,
            mode="test",
            credentials=ExampleCredentials(api_token=GOOD_TOKEN),
            webhook_secret="whsec_example",
            options={"api_base": fake_example_pay},
        )

    @pytest.fixture
    def bad_credentials(self) -> ExampleCredentials:
        return ExampleCredentials(api_token="ex_test_revoked")

    @pytest.fixture
    def succeeding_payment_method(self) -> str:
        return "tok_visa"

    @pytest.fixture
    def declining_payment_method(self) -> str:
        return "tok_declined"

    @pytest.fixture
    def build_webhook(self) -> WebhookBuilder:
        def build(secret: str, timestamp: datetime) -> tuple[Mapping[str, str], bytes]:
            event = {
                "id": "evt_1",
                "type": "charge.succeeded",
                "created": int(timestamp.timestamp()),
                "data": {"id": "cha_1"},
            }
            body = json.dumps(event).encode()
            return webhooks.sign(secret, body, int(timestamp.timestamp())), body

        return build
