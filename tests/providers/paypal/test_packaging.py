"""billplane-paypal is found through its entry point and declares what PayPal can do."""

from __future__ import annotations

import ast
from pathlib import Path

import msgspec
import pytest
from billplane_paypal.credentials import PayPalCredentials

from billplane.plugins import Capability
from billplane.plugins.host import PluginHost

PACKAGE = Path(__file__).resolve().parents[3] / "providers" / "paypal" / "billplane_paypal"
PUBLIC = {"billplane.plugins", "billplane.plugins.contract", "billplane.plugins.errors"}


def test_the_entry_point_registers_paypal() -> None:
    plugin = PluginHost.discover(["paypal"], environ={}).get("paypal")
    assert plugin.name == "paypal"
    assert Capability.USAGE not in plugin.capabilities
    assert {Capability.SUBSCRIPTIONS, Capability.PAUSE, Capability.REFUNDS, Capability.WEBHOOKS} <= plugin.capabilities
    assert plugin.pricing_models == {"flat", "per_seat", "tiered", "volume"}
    assert plugin.secret_fields == {"client_secret"}
    assert plugin.credentials_type is PayPalCredentials


def test_credentials_refuse_unknown_and_missing_fields() -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"client_id": "a", "client_secret": "b", "webhook_id": "c", "secret": "d"}, PayPalCredentials)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"client_id": "a", "client_secret": "b"}, PayPalCredentials)


def test_only_the_public_plugin_api_is_imported() -> None:
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        modules = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        modules |= {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
        private = {m for m in modules if m.startswith("billplane.") or m == "billplane"} - PUBLIC
        assert not private, f"{path.name} imports {sorted(private)}"
