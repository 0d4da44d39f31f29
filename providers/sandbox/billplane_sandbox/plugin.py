"""The entry point (``billplane.providers: sandbox``): registers the sandbox provider with billplane."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import version

from billplane.plugins import AdapterContext, Capability, ProviderAdapter, ProviderPlugin, hookimpl
from billplane_sandbox.adapter import SandboxAdapter
from billplane_sandbox.credentials import SandboxCredentials


def create_adapter(context: AdapterContext) -> ProviderAdapter:
    if not isinstance(context.credentials, SandboxCredentials):
        raise TypeError(f"sandbox credentials must be SandboxCredentials, not {type(context.credentials).__name__}")
    return SandboxAdapter(context, context.credentials)


PLUGIN = ProviderPlugin(
    name="sandbox",
    version=version("billplane-sandbox"),
    description="A payment processor simulated locally: test payment methods, signed webhooks, no network.",
    # Usage is billed by billplane itself for sandbox accounts: nothing to report to a processor.
    capabilities=frozenset(Capability) - {Capability.USAGE},
    pricing_models=frozenset({"flat", "per_seat", "tiered", "volume", "package", "metered"}),
    credentials_type=SandboxCredentials,
    create_adapter=create_adapter,
    secret_fields=frozenset({"api_key"}),
)


@hookimpl
def billplane_register_providers(register: Callable[[ProviderPlugin], None]) -> None:
    register(PLUGIN)
