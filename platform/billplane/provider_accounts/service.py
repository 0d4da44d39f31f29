"""Provider account rules. Never commits: the request owns the transaction, so a change and its event
(``provider_account.created``, ``.updated``, ``.deleted``, data the API's masked view) commit
together or not at all."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from litestar.exceptions import NotFoundException
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError

from billplane.api.pagination import page_of
from billplane.api.problems import ConflictError, InvalidFieldError
from billplane.events import types
from billplane.events.changes import changed
from billplane.events.emit import emit
from billplane.plugins.contract import ProviderPlugin
from billplane.plugins.errors import UnknownProviderError
from billplane.plugins.host import PluginHost
from billplane.provider_accounts.checks import refusal, validated_credentials
from billplane.provider_accounts.masking import credentials_hint, mask, secret_strings
from billplane.provider_accounts.models import ProviderAccount
from billplane.provider_accounts.repository import ProviderAccountRepository
from billplane.provider_accounts.schemas import ProviderAccount as ProviderAccountView
from billplane.provider_accounts.schemas import ProviderAccountCreate, ProviderAccountUpdate
from billplane.provider_accounts.vault import AccountVault, CredentialsUnavailableError, OpenedSecrets
from billplane.sync.repository import OutboxRepository
from billplane.sync.unsent import UNSENT_CHANGES
from billplane_tenants.database import TENANT_SCHEMA_KEY

_DEFAULT_INDEX = "uq_provider_accounts_default"
# Stripe keeps signing with a rolled secret for up to 24 hours; PayPal has no secret to roll.
PREVIOUS_SECRET_ACCEPTED = timedelta(hours=24)


class ProviderAccountService:
    def __init__(self, repository: ProviderAccountRepository, *, plugins: PluginHost, vault: AccountVault) -> None:
        self.repository = repository
        self.plugins = plugins
        self.vault = vault

    @property
    def tenant_id(self) -> int:
        return self.repository.tenant_id

    async def create(self, data: ProviderAccountCreate) -> ProviderAccount:
        plugin = self._plugin(data.provider)
        secrets = secret_strings(data.credentials, data.webhook_secret)
        credentials = validated_credentials(plugin, data.credentials, secrets)
        if isinstance(data.is_default, bool):
            is_default = data.is_default
        else:  # the tenant's first account of a provider is where its objects go, unless told otherwise
            is_default = not await self.repository.has_live_account(plugin.name)
        if is_default and await self.repository.default_id(plugin.name) is not None:
            raise ConflictError(
                f"the tenant already has a default {plugin.name} account: send is_default false, "
                "or make this one the default later with PATCH"
            )
        account_id = await self.repository.next_id()
        opened = OpenedSecrets(credentials=msgspec.to_builtins(credentials), webhook_secret=data.webhook_secret)
        reason = await refusal(
            self.plugins,
            plugin,
            tenant_id=self.tenant_id,
            account_id=account_id,
            mode=data.mode,
            opened=opened,
            secrets=secrets,
        )
        if reason is not None:
            raise InvalidFieldError("credentials", reason)
        account = ProviderAccount(
            id=account_id,
            tenant_id=self.tenant_id,
            provider=plugin.name,
            mode=data.mode,
            label=data.label,
            is_default=is_default,
            credentials_hint=credentials_hint(plugin, credentials),
            webhook_secret_hint=None if data.webhook_secret is None else mask(data.webhook_secret),
            last_checked_at=func.now(),  # the database's clock, like created_at
        )
        self.vault.seal_into(account, opened)
        account = await self._written(self.repository.add(account))
        await self._emit(types.PROVIDER_ACCOUNT_CREATED, account.id, ProviderAccountView.of(account))
        return account

    async def get(self, account_id: int, *, for_update: bool = False) -> ProviderAccount:
        account = await self.repository.get_live(account_id, for_update=for_update)
        if account is None:  # another tenant's id looks exactly like an id that never existed
            raise NotFoundException(f"no provider account {account_id}")
        return account

    async def page(
        self, *, provider: str | None, after: int | None, limit: int
    ) -> tuple[list[ProviderAccount], str | None]:
        rows = await self.repository.page_live(provider=provider, after=after, limit=limit)
        return page_of(rows, limit)

    async def update(self, account_id: int, data: ProviderAccountUpdate) -> ProviderAccount:
        account = await self.get(account_id, for_update=True)
        before = ProviderAccountView.of(account)
        changes = data.changes()
        if "credentials" in changes or "webhook_secret" in changes:
            await self._replace_secrets(account, changes)
        if "label" in changes:
            account.label = changes["label"]
        if changes.get("is_default") is True and not account.is_default:
            # In one transaction: the old default is unset before this one is set (the partial index).
            for previous in await self.repository.unset_default(account.provider, other_than=account.id):
                await self._emit(types.PROVIDER_ACCOUNT_UPDATED, previous.id, ProviderAccountView.of(previous))
            account.is_default = True
        elif changes.get("is_default") is False:
            account.is_default = False
        account = await self._written(self.repository.save(account))
        await self._changed(account, before)
        return account

    async def _replace_secrets(self, account: ProviderAccount, changes: dict[str, Any]) -> None:
        plugin = self._plugin(account.provider, field="credentials")
        if "credentials" in changes and "webhook_secret" in changes:
            try:  # only the old webhook secret is needed, to keep accepting it for a while
                kept = self.vault.open(account)
            except CredentialsUnavailableError:
                kept = OpenedSecrets(credentials={}, webhook_secret=None)
        else:
            try:
                kept = self.vault.open(account)
            except CredentialsUnavailableError:
                raise ConflictError(
                    "the account's stored secrets cannot be read (their encryption key is gone): "
                    "send both credentials and webhook_secret"
                ) from None
        webhook_secret: str | None = changes.get("webhook_secret", kept.webhook_secret)
        credentials = kept.credentials
        if "credentials" in changes:
            secrets = secret_strings(changes["credentials"], webhook_secret)
            typed = validated_credentials(plugin, changes["credentials"], secrets)
            credentials = msgspec.to_builtins(typed)
            opened = OpenedSecrets(credentials=credentials, webhook_secret=webhook_secret)
            reason = await refusal(
                self.plugins,
                plugin,
                tenant_id=self.tenant_id,
                account_id=account.id,
                mode=account.mode,
                opened=opened,
                secrets=secrets,
            )
            if reason is not None:
                raise InvalidFieldError("credentials", reason)
            account.credentials_hint = credentials_hint(plugin, typed)
            account.last_checked_at = func.now()
            account.last_check_error = None
        account.webhook_secret_hint = None if webhook_secret is None else mask(webhook_secret)
        previous = kept.previous_webhook_secret
        if "webhook_secret" in changes and webhook_secret is None:
            # Removed (a leaked secret, most likely): nothing signed with it, or with the one it
            # replaced, verifies any more. No grace: sealing no previous secret clears its expiry too.
            previous = None
        elif "webhook_secret" in changes and kept.webhook_secret not in {None, webhook_secret}:
            # Rotated: the provider may still sign with the old secret for a while, so both verify for a day.
            previous = kept.webhook_secret
            account.previous_webhook_secret_until = datetime.now(UTC) + PREVIOUS_SECRET_ACCEPTED
        # All sealed again, under the current key: a write also completes a pending rotation.
        self.vault.seal_into(
            account,
            OpenedSecrets(credentials=credentials, webhook_secret=webhook_secret, previous_webhook_secret=previous),
        )

    async def check(self, account_id: int) -> ProviderAccount:
        """Ask the provider again; the outcome is recorded on the account either way (a 200)."""
        account = await self.get(account_id, for_update=True)
        before = ProviderAccountView.of(account)
        account.last_check_error = await self._check_reason(account)
        account.last_checked_at = func.now()
        account = await self.repository.save(account)
        await self._changed(account, before)
        return account

    async def _check_reason(self, account: ProviderAccount) -> str | None:
        try:
            plugin = self.plugins.get(account.provider)
        except UnknownProviderError:
            return f"the {account.provider} provider is not installed in this billplane"
        try:
            opened = self.vault.open(account)
        except CredentialsUnavailableError:
            return "the stored credentials cannot be read (their encryption key is gone): send them again"
        return await refusal(
            self.plugins,
            plugin,
            tenant_id=self.tenant_id,
            account_id=account.id,
            mode=account.mode,
            opened=opened,
            secrets=secret_strings(opened.credentials, opened.webhook_secret),
        )

    async def delete(self, account_id: int) -> None:
        account = await self.get(account_id, for_update=True)
        if await self.repository.used_by_live_subscriptions(account.id):
            raise ConflictError("live subscriptions use this account: cancel or move them first")
        if await self.repository.changes_unsent(account.id):
            raise ConflictError(f"through this account, {UNSENT_CHANGES}")
        if await self.repository.money_in_flight(account.id):
            # Gone, the account could settle them no more: the payment, and its invoice, would stay pending.
            raise ConflictError(
                "payments or refunds through this account are still pending: let them settle (or resolve them) first"
            )
        shown = ProviderAccountView.of(account)  # the event's data: the account as last shown
        await self.repository.mark_deleted(account)
        if self.repository.session.info.get(TENANT_SCHEMA_KEY) is not None:
            await OutboxRepository(self.repository.session).refresh_left_at(account.id)
        await self._emit(types.PROVIDER_ACCOUNT_DELETED, account.id, shown)

    async def _changed(self, account: ProviderAccount, before: ProviderAccountView) -> None:
        """``provider_account.updated`` if the API shows the account changed (its secrets never show:
        sealing them again under the same values is no change)."""
        shown = ProviderAccountView.of(account)
        if changed(before, shown):
            await self._emit(types.PROVIDER_ACCOUNT_UPDATED, account.id, shown)

    async def _emit(self, type_: str, account_id: int, shown: ProviderAccountView) -> None:
        """Record an event about an account in the tenant's schema. ``shown`` is the API's view, which
        holds no secret: the credentials and webhook secret appear only as their masked hints.

        A session that can reach only the control schema has no tenant's events to write to: such
        a write records none. billplane's own callers (the API, the development demo tenant of
        ``billplane dev``) write through a session of the tenant's schema.
        """
        session = self.repository.session
        if session.info.get(TENANT_SCHEMA_KEY) is not None:
            await emit(session, type_, types.PROVIDER_ACCOUNT_OBJECT, account_id, shown)

    def _plugin(self, name: str, *, field: str = "provider") -> ProviderPlugin:
        try:
            return self.plugins.get(name)
        except UnknownProviderError as exc:
            raise InvalidFieldError(field, str(exc)) from None

    async def _written(self, write: Awaitable[ProviderAccount]) -> ProviderAccount:
        try:
            return await write
        except IntegrityError as exc:
            if _DEFAULT_INDEX in str(exc.orig):  # a concurrent request made another default first
                raise ConflictError("another default account of this provider was set at the same time") from None
            raise
