"""The text a failed sync attempt records (the outbox row's ``last_error``, which the API shows as the
object's ``last_sync_error`` to any key that can read it) and logs. It holds no secret:

- a provider's own error (``ProviderError`` and its kinds, the contract's errors): its message and
  code, scrubbed of every secret this process has opened (the credentials and webhook secrets of
  the account the call used among them: ``AccountVault.open`` remembers them), and of the shapes of
  keys: a provider may echo the key it was called with;
- billplane's own errors about the account (its secrets cannot be opened, its provider is not
  installed): their text, scrubbed the same way;
- anything else (a plugin bug, an error the adapter did not classify): its type and a fixed text,
  never ``str(exc)``. The worker's log keeps the traceback: every log record is scrubbed too
  (``billplane.observability.records``).
"""

from __future__ import annotations

from collections.abc import Iterable

from billplane.observability.redaction import redact
from billplane.plugins.errors import ProviderError, UnknownProviderError
from billplane.provider_accounts.masking import redact as without
from billplane.provider_accounts.vault import CredentialsUnavailableError

# Exceptions whose text billplane writes itself, from no secret (the vault's reason is scrubbed already).
_OWN_ERRORS = (CredentialsUnavailableError, UnknownProviderError)


def provider_failure(exc: ProviderError, secrets: Iterable[str] = ()) -> str:
    """The provider's message and code, minus the account's ``secrets`` and every other secret."""
    return redact(without(f"{exc.message} ({exc.code})" if exc.code else exc.message, secrets))


def unexpected_failure(exc: Exception, secrets: Iterable[str] = ()) -> str:
    """An error outside the provider contract: its type, and its text only if billplane wrote it."""
    if isinstance(exc, _OWN_ERRORS):
        return redact(without(f"{type(exc).__name__}: {exc}", secrets))
    return f"{type(exc).__name__}: the attempt failed unexpectedly (the worker's log has the details)"
