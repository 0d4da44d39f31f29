"""``DatabaseAccountSource``: the ``AccountSource`` that sync and webhook code resolve adapters through.

Each lookup reads the control schema in its own short transaction (never inside a tenant's), opens
the account's secrets and builds a new adapter from that one tenant's credentials.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import cast

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.plugins.contract import Mode
from billplane.plugins.errors import UnknownProviderError
from billplane.provider_accounts.masking import redact, secret_strings
from billplane.provider_accounts.models import ProviderAccount
from billplane.provider_accounts.repository import AccountLookup, ProviderAccountRepository
from billplane.provider_accounts.resolved import ResolvedAccount
from billplane.provider_accounts.vault import AccountVault, CredentialsUnavailableError
from billplane.runtime import Runtime

logger = logging.getLogger("billplane.provider_accounts")


class DatabaseAccountSource:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._vault = AccountVault.from_settings(runtime.settings)

    async def account(self, account_id: int) -> ResolvedAccount | None:
        """The live account with this id, of any tenant; None if there is none (or it was deleted).

        Raises ``UnknownProviderError`` if its provider is not installed (or not allowed) here, and
        ``CredentialsUnavailableError`` if its secrets cannot be opened with the configured keys
        or no longer fit the provider's credentials schema.
        """
        async with self._runtime.database.control_session() as session:
            found = await AccountLookup(session).live_with_schema(account_id)
        return None if found is None else self._resolve(*found)

    async def default_account_ids(self, session: AsyncSession, tenant_id: int) -> tuple[int, ...]:
        return await ProviderAccountRepository(session, tenant_id).default_ids()

    async def live_account_ids(self, session: AsyncSession, tenant_id: int, account_ids: Sequence[int]) -> set[int]:
        return await ProviderAccountRepository(session, tenant_id).live_ids(account_ids)

    async def default_accounts(self, tenant_id: int) -> list[ResolvedAccount]:
        """The tenant's default account of each provider, skipping (and logging) providers not installed here.

        An account whose secrets cannot be opened raises ``CredentialsUnavailableError``: objects
        must not silently stop being mirrored to it.
        """
        async with self._runtime.database.control_session() as session:
            found = await AccountLookup(session).defaults_with_schema(tenant_id)
        resolved = []
        for account, schema in found:
            try:
                resolved.append(self._resolve(account, schema))
            except UnknownProviderError:
                logger.warning(
                    "tenant %s: default account %s is for provider %r, which is not installed here",
                    tenant_id,
                    account.id,
                    account.provider,
                )
        return resolved

    def _resolve(self, account: ProviderAccount, schema: str) -> ResolvedAccount:
        opened = self._vault.open(account)
        try:
            adapter = self._runtime.plugins.adapter(
                account.provider,
                tenant_id=account.tenant_id,
                account_id=account.id,
                mode=account.mode,
                credentials=opened.credentials,
                webhook_secret=opened.webhook_secret,
                previous_webhook_secret=opened.previous_webhook_secret,
            )
        except msgspec.ValidationError as exc:  # the plugin's schema changed since they were stored
            reason = redact(
                str(exc), secret_strings(opened.credentials, opened.webhook_secret, opened.previous_webhook_secret)
            )
            message = f"the stored credentials no longer fit the {account.provider} provider's schema: {reason}"
            raise CredentialsUnavailableError(account.id, message) from None
        return ResolvedAccount(
            id=account.id,
            tenant_id=account.tenant_id,
            tenant_schema=schema,
            provider=account.provider,
            mode=cast("Mode", account.mode),  # the table's check constraint allows only test and live
            is_default=account.is_default,
            adapter=adapter,
            bills_subscriptions=self._runtime.plugins.get(account.provider).bills_subscriptions,
            secrets=tuple(secret_strings(opened.credentials, opened.webhook_secret, opened.previous_webhook_secret)),
        )
