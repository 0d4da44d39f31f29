"""The distribution: entry point, metadata, credentials that never show their key."""

from __future__ import annotations

import msgspec
import pytest
from billplane_stripe.adapter import StripeAdapter
from billplane_stripe.credentials import StripeCredentials
from billplane_stripe.plugin import PLUGIN

from billplane.plugins import Capability
from billplane.plugins.host import PluginHost


def test_the_entry_point_registers_stripe() -> None:
    assert PluginHost.discover(["stripe"], environ={}).get("stripe") is PLUGIN


def test_everything_is_declared() -> None:
    assert PLUGIN.capabilities == frozenset(Capability)
    assert PLUGIN.pricing_models == {"flat", "per_seat", "tiered", "volume", "package", "metered"}
    assert PLUGIN.secret_fields == {"secret_key"}


def test_the_host_builds_an_adapter_from_stored_credentials() -> None:
    environ = {"BILLPLANE_PROVIDER_STRIPE_API_BASE": "http://127.0.0.1:1", "BILLPLANE_PROVIDER_STRIPE_TIMEOUT": "3"}
    adapter = PluginHost.discover(["stripe"], environ=environ).adapter(
        "stripe", tenant_id=1, account_id=2, mode="test", credentials={"secret_key": "sk_test_secret_value"}
    )
    assert isinstance(adapter, StripeAdapter)
    assert "sk_test_secret_value" not in repr(adapter)


def test_unknown_credential_fields_are_refused() -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"secret_key": "sk_test_x", "publishable_key": "pk_test_x"}, StripeCredentials)


def test_the_key_never_shows() -> None:
    assert "sk_test_secret_value" not in repr(StripeCredentials(secret_key="sk_test_secret_value"))


@pytest.mark.parametrize("timeout", ["zero", "0", "-1"])
def test_a_bad_timeout_option_is_refused(timeout: str) -> None:
    host = PluginHost.discover(["stripe"], environ={"BILLPLANE_PROVIDER_STRIPE_TIMEOUT": timeout})
    with pytest.raises(ValueError, match="BILLPLANE_PROVIDER_STRIPE_TIMEOUT"):
        host.adapter("stripe", tenant_id=1, account_id=2, mode="test", credentials={"secret_key": "sk_test_x"})
