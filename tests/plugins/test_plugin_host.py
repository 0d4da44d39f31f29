"""The plugin host: entry-point discovery, the allowlist, and refusals of bad registrations."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from types import SimpleNamespace

import msgspec
import pytest
from billplane_sandbox.credentials import SandboxCredentials

from billplane.plugins import ProviderPlugin, UnknownProviderError, hookimpl
from billplane.plugins.host import ENTRY_POINT_GROUP, PluginHost

SANDBOX = PluginHost.discover(["sandbox"], environ={}).get("sandbox")


def _hooks(*providers: ProviderPlugin) -> object:
    """A hook implementation, as a plugin distribution's entry-point module would hold it."""

    @hookimpl
    def billplane_register_providers(register: Callable[[ProviderPlugin], None]) -> None:
        for provider in providers:
            register(provider)

    return SimpleNamespace(billplane_register_providers=billplane_register_providers)


def _named(name: str) -> ProviderPlugin:
    return ProviderPlugin(
        name=name,
        version="1.0",
        description="test",
        capabilities=frozenset(),
        pricing_models=frozenset(),
        credentials_type=SandboxCredentials,
        create_adapter=SANDBOX.create_adapter,
    )


def test_the_sandbox_is_discovered_through_its_entry_point() -> None:
    [entry_point] = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == "sandbox"]
    assert entry_point.value == "billplane_sandbox.plugin"
    assert entry_point.dist is not None
    assert entry_point.dist.name == "billplane-sandbox"
    host = PluginHost.discover(environ={})
    assert "sandbox" in host.names()
    assert host.get("sandbox").version == entry_point.dist.version


def test_the_allowlist_is_honoured() -> None:
    assert PluginHost.discover([], environ={}).names() == []
    hidden = PluginHost.discover(["not_installed"], environ={})
    assert hidden.names() == []
    with pytest.raises(UnknownProviderError):
        hidden.get("sandbox")


def test_the_allowlist_applies_to_registered_names_too() -> None:
    host = PluginHost(["allowed"], environ={})
    host.add_plugin(_hooks(_named("allowed"), _named("smuggled")), "allowed")
    assert host.names() == ["allowed"]


def test_duplicate_names_are_refused() -> None:
    host = PluginHost(environ={})
    host.add_plugin(_hooks(_named("twin")), "first")
    with pytest.raises(ValueError, match="two plugins register a provider named 'twin'"):
        host.add_plugin(_hooks(_named("twin")), "second")


@pytest.mark.parametrize("name", ["x", "Sandbox", "1pay", "pay-pal", "a" * 33, ""])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="must match"):
        PluginHost(environ={}).add_plugin(_hooks(_named(name)), "bad")


def test_an_unknown_provider_lists_the_installed_ones() -> None:
    host = PluginHost.discover(environ={})
    with pytest.raises(UnknownProviderError) as caught:
        host.get("not_installed")
    assert caught.value.installed == host.names()
    assert "no provider named 'not_installed'; installed: " in str(caught.value)
    assert "sandbox" in str(caught.value)
    with pytest.raises(UnknownProviderError, match="installed: none"):
        PluginHost(environ={}).get("x")


def test_options_and_credentials_reach_the_adapter() -> None:
    environ = {"BILLPLANE_PROVIDER_SANDBOX_WEBHOOK_URL": "http://127.0.0.1:1", "BILLPLANE_PROVIDER_OTHER_X": "y"}
    host = PluginHost.discover(["sandbox"], environ=environ)
    assert host.options("sandbox") == {"webhook_url": "http://127.0.0.1:1"}
    host.adapter("sandbox", tenant_id=1, account_id=1, mode="test", credentials={"api_key": "sk_sandbox_1"})
    with pytest.raises(msgspec.ValidationError):
        host.adapter("sandbox", tenant_id=1, account_id=1, mode="test", credentials={"key": "sk_sandbox_1"})
