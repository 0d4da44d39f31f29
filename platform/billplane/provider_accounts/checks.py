"""Validating credentials against a provider's schema, and asking the provider whether it takes them.

Every message that leaves here is scrubbed of the submitted secret values: a provider (or msgspec,
for an enum) may echo a value, and these messages reach API responses and the database.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence

import msgspec

from billplane.api.problems import InvalidFieldError, ServiceUnavailableError
from billplane.plugins.contract import ProviderPlugin
from billplane.plugins.errors import ProviderError, RetryableProviderError
from billplane.plugins.host import PluginHost
from billplane.provider_accounts.masking import redact
from billplane.provider_accounts.vault import OpenedSecrets

logger = logging.getLogger("billplane.provider_accounts")

_AT = re.compile(r"^(?P<message>.*) - at `\$(?P<path>[^`]*)`$", re.DOTALL)
_NAMED = re.compile(r"(?:missing required|contains unknown) field `([^`]+)`")


def validated_credentials(plugin: ProviderPlugin, credentials: object, secrets: Sequence[str]) -> msgspec.Struct:
    """``credentials`` as the plugin's ``credentials_type``, or a 422 naming ``credentials.<path>``."""
    try:
        return msgspec.convert(credentials, plugin.credentials_type)
    except msgspec.ValidationError as exc:
        field, message = _field_and_message(str(exc))
        raise InvalidFieldError(field, redact(message, secrets)) from None


def _field_and_message(text: str) -> tuple[str, str]:
    path = ""
    located = _AT.match(text)
    if located:
        text, path = located["message"], located["path"]
    named = _NAMED.search(text)
    if named:  # a missing or unknown field is reported on its parent object
        path = f"{path}.{named.group(1)}"
    return f"credentials{path}", text


async def refusal(
    plugins: PluginHost,
    plugin: ProviderPlugin,
    *,
    tenant_id: int,
    account_id: int,
    mode: str,
    opened: OpenedSecrets,
    secrets: Sequence[str],
) -> str | None:
    """Run the provider's credentials check: None if it accepts, else its (scrubbed) reason.

    A transient failure is a 503 (nothing is recorded: the answer says nothing about the
    credentials). A plugin that raises something outside the contract is logged by type only,
    since its message might hold a credential.
    """
    try:
        adapter = plugins.adapter(
            plugin.name,
            tenant_id=tenant_id,
            account_id=account_id,
            mode=mode,
            credentials=opened.credentials,
            webhook_secret=opened.webhook_secret,
        )
        await adapter.check_credentials()
    except RetryableProviderError as exc:
        headers = {"Retry-After": str(math.ceil(exc.retry_after))} if exc.retry_after else None
        detail = f"{plugin.name} could not check the credentials now; retry later: {redact(exc.message, secrets)}"
        raise ServiceUnavailableError(detail=detail, headers=headers) from None
    except ProviderError as exc:
        return redact(exc.message, secrets) or f"{plugin.name} refused the credentials"
    except Exception as exc:
        logger.error("the %s provider's credentials check raised %s", plugin.name, type(exc).__name__)  # noqa: TRY400 - no traceback: its text may hold a credential
        return f"the {plugin.name} provider failed while checking the credentials ({type(exc).__name__})"
    return None
