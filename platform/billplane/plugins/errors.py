"""Errors a provider adapter raises, and the one the host raises for an unknown provider.

billplane decides what to do from the type alone: retry later, show the provider's message to the
tenant, or refuse the operation as unsupported. Messages must never contain credentials.
"""

from __future__ import annotations

from collections.abc import Iterable


class ProviderError(Exception):
    """The provider refused or failed the call; retrying the same call will not help."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class RetryableProviderError(ProviderError):
    """A transient failure (network, 5xx, 429): billplane retries with backoff.

    ``retry_after``: seconds the provider asked to wait (its ``Retry-After``), if it said.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class InvalidCredentialsError(ProviderError):
    """The credentials were refused by the provider (or fail its own format rules)."""


class UnsupportedOperationError(ProviderError):
    """The provider has no equivalent (for example a pricing model it cannot express)."""

    def __init__(self, operation: str, reason: str) -> None:
        super().__init__(f"{operation} is not supported: {reason}", code="unsupported")
        self.operation = operation
        self.reason = reason


class WebhookVerificationError(ProviderError):
    """A webhook's signature, timestamp or body did not verify; nothing in it may be applied."""


class UnknownProviderError(LookupError):
    """No installed and allowed provider has this name."""

    def __init__(self, name: str, installed: Iterable[str]) -> None:
        self.name = name
        self.installed = sorted(installed)
        listed = ", ".join(self.installed) or "none"
        super().__init__(f"no provider named {name!r}; installed: {listed}")
