"""The hooks billplane calls on provider plugins. Few and stable: the contract lives on
``ProviderAdapter`` (``billplane.plugins.contract``), not in a growing list of hooks.

Every hook here is documented in docs/plugins/hooks.md; a test fails when one is not.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

from billplane.plugins.contract import ProviderPlugin

PROJECT = "billplane"
hookspec = pluggy.HookspecMarker(PROJECT)


@hookspec
def billplane_register_providers(register: Callable[[ProviderPlugin], None]) -> None:
    """Call ``register`` once for each provider this distribution offers."""
