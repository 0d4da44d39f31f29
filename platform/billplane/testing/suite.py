"""``ConformanceSuite``: subclass it once per provider, in a module pytest collects (``Test...``)."""

from __future__ import annotations

import pytest

from billplane.testing.metadata_checks import AdapterShapeChecks, MetadataChecks
from billplane.testing.operation_checks import (
    CatalogChecks,
    CustomerChecks,
    PaymentChecks,
    SubscriptionChecks,
    UsageChecks,
)
from billplane.testing.webhook_checks import WebhookChecks


class ConformanceSuite(
    MetadataChecks,
    AdapterShapeChecks,
    CustomerChecks,
    CatalogChecks,
    SubscriptionChecks,
    UsageChecks,
    PaymentChecks,
    WebhookChecks,
):
    """Every contract check of the kit. Checks of a capability the plugin does not declare are skipped
    (and ``test_undeclared_operations_are_unsupported`` checks that those operations refuse)."""

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"  # billplane runs adapters on asyncio
