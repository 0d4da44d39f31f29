"""Asking a payment's provider about a charge billplane could not confirm (``find_payment``).

Only a provider that declares the ``payment_lookup`` capability is ever asked; billplane decides
that from the plugin's declaration, never by calling and catching ``UnsupportedOperationError``.
"""

from __future__ import annotations

from dataclasses import dataclass

from billplane.payments.reconcile import Unconfirmed
from billplane.plugins.contract import Capability, ChargeResult, PaymentLookupAdapter
from billplane.plugins.errors import ProviderError, UnknownProviderError
from billplane.plugins.host import PluginHost
from billplane.provider_accounts.resolved import AccountSource, ResolvedAccount


class AccountGoneError(ProviderError):
    """The account the charge went through was deleted: nobody can ask the provider through it."""


@dataclass(slots=True)
class PaymentLookup:
    accounts: AccountSource | None
    plugins: PluginHost

    def can_look_up(self, provider: str) -> bool:
        try:
            plugin = self.plugins.get(provider)
        except UnknownProviderError:
            return False
        return Capability.PAYMENT_LOOKUP in plugin.capabilities

    async def can_ask(self, stuck: Unconfirmed, tenant_id: int) -> bool:
        """Whether the provider can be asked about this charge: it declares ``payment_lookup``, and
        the account the charge went through still exists."""
        if not self.can_look_up(stuck.provider):
            return False
        # Without an account source this process cannot tell: ``find`` says so when asked.
        return self.accounts is None or await self._account(stuck, tenant_id) is not None

    async def _account(self, stuck: Unconfirmed, tenant_id: int) -> ResolvedAccount | None:
        """The account the charge went through, if it still exists (and is the payment's)."""
        assert self.accounts is not None  # noqa: S101 - checked by the callers
        account = await self.accounts.account(stuck.account_id)
        if account is None or account.tenant_id != tenant_id or account.provider != stuck.provider:
            return None
        return account

    async def find(self, stuck: Unconfirmed, tenant_id: int) -> ChargeResult | None:
        """The provider's answer; ``RetryableProviderError`` when it cannot be reached."""
        if self.accounts is None:
            raise ProviderError("no provider account source is configured in this process")
        account = await self._account(stuck, tenant_id)
        if account is None:
            raise AccountGoneError(f"provider account {stuck.account_id} no longer exists")
        adapter = account.adapter
        if not isinstance(adapter, PaymentLookupAdapter):
            raise ProviderError(f"{account.provider} declares payment_lookup but its adapter has no find_payment")
        return await adapter.find_payment(
            stuck.request, idempotency_key=stuck.idempotency_key, created_after=stuck.created_after
        )
