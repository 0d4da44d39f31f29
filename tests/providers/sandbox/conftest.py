"""Sandbox adapters built through billplane's plugin host, as billplane builds them."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest

from billplane.plugins import ProviderAdapter
from billplane.plugins.host import PluginHost

MakeAdapter = Callable[..., ProviderAdapter]
API_KEY = "sk_sandbox_tests"
WEBHOOK_SECRET = "whsec_sandbox_tests"


@pytest.fixture
def make_adapter() -> MakeAdapter:
    def make(
        *,
        account_id: int = 1,
        api_key: str = API_KEY,
        webhook_secret: str | None = WEBHOOK_SECRET,
        options: Mapping[str, str] | None = None,
    ) -> ProviderAdapter:
        environ = {f"BILLPLANE_PROVIDER_SANDBOX_{key.upper()}": value for key, value in (options or {}).items()}
        host = PluginHost.discover(["sandbox"], environ=environ)
        return host.adapter(
            "sandbox",
            tenant_id=1,
            account_id=account_id,
            mode="test",
            credentials={"api_key": api_key},
            webhook_secret=webhook_secret,
        )

    return make
