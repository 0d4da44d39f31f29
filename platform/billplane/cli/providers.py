"""`billplane providers list`: the payment providers this installation may use.

Needs neither a database nor secrets: only the installed distributions and BILLPLANE_PROVIDERS.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import get_args

import click
import msgspec

from billplane.plugins import Capability, ProviderPlugin
from billplane.plugins.contract import PricingModel
from billplane.plugins.host import PluginHost


def allowlist(environ: Mapping[str, str]) -> frozenset[str] | None:
    """BILLPLANE_PROVIDERS read as the settings read it: unset or empty means every installed provider."""
    raw = environ.get("BILLPLANE_PROVIDERS")
    if not raw:
        return None
    return frozenset(name.strip() for name in raw.split(",") if name.strip())


class ProviderSummary(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    version: str
    description: str
    capabilities: list[str]
    pricing_models: list[str]


def summary(plugin: ProviderPlugin) -> ProviderSummary:
    return ProviderSummary(
        name=plugin.name,
        version=plugin.version,
        description=plugin.description,
        capabilities=[c.value for c in Capability if c in plugin.capabilities],
        pricing_models=[m for m in get_args(PricingModel) if m in plugin.pricing_models],
    )


@click.group()
def providers() -> None:
    """Payment provider plugins (entry points in the billplane.providers group)."""


@providers.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of text.")
def list_providers(*, as_json: bool) -> None:
    """List every installed provider that BILLPLANE_PROVIDERS allows."""
    allowed = allowlist(os.environ)
    try:
        host = PluginHost.discover(allowed)
    except Exception as exc:  # a plugin that fails to import or register: say which, not a traceback
        raise click.ClickException(f"cannot load the provider plugins: {type(exc).__name__}: {exc}") from exc
    found = [summary(plugin) for plugin in host.plugins()]
    for name in sorted((allowed or set()) - set(host.names())):
        click.echo(f"warning: BILLPLANE_PROVIDERS names {name!r}, which is not installed", err=True)
    if as_json:
        click.echo(msgspec.json.encode(found).decode())
        return
    if not found:
        click.echo("no provider is installed and allowed (see BILLPLANE_PROVIDERS)")
    for provider in found:
        click.echo(f"{provider.name} {provider.version}: {provider.description}")
        click.echo(f"  capabilities:   {', '.join(provider.capabilities) or '-'}")
        click.echo(f"  pricing models: {', '.join(provider.pricing_models) or '-'}")
