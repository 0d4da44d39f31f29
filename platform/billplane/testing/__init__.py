"""The conformance kit for provider plugins: a pytest plugin shipped with billplane.

A provider distribution runs it against its own adapter and a fake of its provider's API::

    pytest -p billplane.testing

and subclasses ``ConformanceSuite`` in one test module, overriding the fixtures that describe its
provider (``provider_plugin``, ``adapter_context``, ``bad_credentials``, ...). See
docs/plugins/writing-a-provider.md and docs/plugins/conformance-kit.md.

(PYTEST_DONT_REWRITE: this module holds no assertions; a test module may import it before
pytest loads it as a plugin, and pytest would warn that it cannot be rewritten. The check modules
are rewritten when pytest loads the kit first, as ``-p billplane.testing`` does.)
"""

from __future__ import annotations

from billplane.testing.fixtures import (
    adapter,
    adapter_context,
    bad_credentials,
    build_webhook,
    currency,
    declining_payment_method,
    new_key,
    provider_plugin,
    succeeding_payment_method,
    webhook_tolerance,
)
from billplane.testing.loading import load_plugin
from billplane.testing.report import pytest_collection_finish, pytest_terminal_summary
from billplane.testing.suite import ConformanceSuite
from billplane.testing.webhooks import WebhookBuilder

__all__ = [
    "ConformanceSuite",
    "WebhookBuilder",
    "adapter",
    "adapter_context",
    "bad_credentials",
    "build_webhook",
    "currency",
    "declining_payment_method",
    "load_plugin",
    "new_key",
    "provider_plugin",
    "pytest_collection_finish",
    "pytest_terminal_summary",
    "succeeding_payment_method",
    "webhook_tolerance",
]
