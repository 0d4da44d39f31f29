"""The plugin host: discovers provider distributions and hands out their adapters.

Provider distributions declare an entry point in the group ``billplane.providers`` whose object
(a module or class) implements ``billplane_register_providers``. Built-in providers are installed
and discovered exactly like third-party ones. Only names on the allowlist are loaded: the
entry-point name and the registered provider name are both checked, so an operator can pin
exactly which code runs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Mapping
from importlib.metadata import entry_points

import pluggy

from billplane.plugins import hookspecs
from billplane.plugins.contract import AdapterContext, ProviderAdapter, ProviderPlugin
from billplane.plugins.errors import UnknownProviderError

ENTRY_POINT_GROUP = "billplane.providers"
OPTION_PREFIX = "BILLPLANE_PROVIDER_"
_NAME = re.compile(r"^[a-z][a-z0-9_]{1,31}$")


class PluginHost:
    """The providers this process may use, by name."""

    def __init__(self, allowlist: Collection[str] | None = None, environ: Mapping[str, str] | None = None) -> None:
        self._allowlist = None if allowlist is None else frozenset(allowlist)
        self._environ = os.environ if environ is None else environ
        self._providers: dict[str, ProviderPlugin] = {}
        self._manager = pluggy.PluginManager(hookspecs.PROJECT)
        self._manager.add_hookspecs(hookspecs)

    @classmethod
    def discover(cls, allowlist: Collection[str] | None = None, environ: Mapping[str, str] | None = None) -> PluginHost:
        """Load every allowed entry point of the ``billplane.providers`` group."""
        host = cls(allowlist, environ)
        for entry_point in entry_points(group=ENTRY_POINT_GROUP):
            if host.allows(entry_point.name) and host._manager.get_plugin(entry_point.name) is None:
                host.add_plugin(entry_point.load(), entry_point.name)
        return host

    def allows(self, name: str) -> bool:
        return self._allowlist is None or name in self._allowlist

    def add_plugin(self, plugin: object, name: str) -> None:
        """Register a hook implementation (a module or object) and collect what it registers."""
        self._manager.register(plugin, name=name)  # pluggy checks the hook signatures here
        # Only this plugin's implementation: calling every plugin again would register twice.
        for impl in self._manager.hook.billplane_register_providers.get_hookimpls():
            if impl.plugin is plugin:
                impl.function(register=self.register)

    def register(self, provider: ProviderPlugin) -> None:
        if not _NAME.fullmatch(provider.name):
            raise ValueError(f"provider name {provider.name!r} must match {_NAME.pattern}")
        if provider.name in self._providers:
            raise ValueError(f"two plugins register a provider named {provider.name!r}")
        if self.allows(provider.name):
            self._providers[provider.name] = provider

    def get(self, name: str) -> ProviderPlugin:
        try:
            return self._providers[name]
        except KeyError:
            raise UnknownProviderError(name, self._providers) from None

    def names(self) -> list[str]:
        return sorted(self._providers)

    def plugins(self) -> list[ProviderPlugin]:
        return [self._providers[name] for name in self.names()]

    def billers(self) -> frozenset[str]:
        """Installed providers that bill the subscriptions they hold (Stripe, PayPal)."""
        return frozenset(name for name, provider in self._providers.items() if provider.bills_subscriptions)

    def options(self, name: str) -> dict[str, str]:
        """Operator settings for one provider: ``BILLPLANE_PROVIDER_<NAME>_<KEY>`` -> ``{key: value}``."""
        prefix = f"{OPTION_PREFIX}{name.upper()}_"
        return {key[len(prefix) :].lower(): value for key, value in self._environ.items() if key.startswith(prefix)}

    def adapter(
        self,
        name: str,
        *,
        tenant_id: int,
        account_id: int,
        mode: str,
        credentials: object,
        webhook_secret: str | None = None,
        previous_webhook_secret: str | None = None,
    ) -> ProviderAdapter:
        """A new adapter for one tenant's account; ``credentials`` as stored (a dict or the Struct)."""
        import msgspec  # noqa: PLC0415 - keeps this module's import light for the CLI

        provider = self.get(name)
        typed = msgspec.convert(credentials, provider.credentials_type)
        context = AdapterContext(
            tenant_id=tenant_id,
            account_id=account_id,
            mode=mode,  # type: ignore[arg-type]
            credentials=typed,
            webhook_secret=webhook_secret,
            options=self.options(name),
            previous_webhook_secret=previous_webhook_secret,
        )
        return provider.create_adapter(context)
