"""The entry point (``billplane.providers: stripe``): registers nothing until the adapter lands."""

from __future__ import annotations

from collections.abc import Callable

from billplane.plugins import ProviderPlugin, hookimpl


@hookimpl
def billplane_register_providers(register: Callable[[ProviderPlugin], None]) -> None:
    del register  # the adapter is being built (issue tracker); nothing to register yet
