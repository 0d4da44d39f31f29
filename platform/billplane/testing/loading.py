"""Load a provider plugin through billplane's own plugin host, without installing its distribution."""

from __future__ import annotations

from billplane.plugins import ProviderPlugin
from billplane.plugins.host import PluginHost


def load_plugin(hooks: object, name: str) -> ProviderPlugin:
    """The provider ``name`` that ``hooks`` (the module your entry point names) registers.

    The hook implementation is registered and called exactly as discovery would do it (pluggy
    checks its signature), so a test needs no installed entry point.
    """
    host = PluginHost(environ={})
    host.add_plugin(hooks, name)
    return host.get(name)
