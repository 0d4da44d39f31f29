"""Asking a payment's provider about a charge billplane could not confirm (``find_payment``),
about one it holds as pending (``charge_status``), about a refund billplane could not confirm
(``find_refund``), or about one it holds as pending (``refund_status``).

Only a provider that declares the capability (``payment_lookup``, ``payment_status``,
``refund_lookup``, ``refund_status``) is ever asked; billplane decides that from the plugin's
declaration, never by calling and catching ``UnsupportedOperationError``.

What the adapter's own call raises other than a ``ProviderError`` (a bug of the plugin) comes out
as ``PluginFailedError``, caused by it; what billplane raises on the way (opening the account:
its control session, its sealed credentials, the plugin's lookup) comes out as it is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from billplane.payments.pending_charges import PendingCharge
from billplane.payments.pending_refunds import HeldRefund, LostRefund
from billplane.payments.reconcile import Unconfirmed
from billplane.plugins.contract import (
    Capability,
    ChargeResult,
    PaymentLookupAdapter,
    PaymentStatusAdapter,
    RefundLookupAdapter,
    RefundResult,
    RefundStatusAdapter,
)
from billplane.plugins.errors import ProviderError, UnknownProviderError
from billplane.plugins.host import PluginHost
from billplane.provider_accounts.resolved import AccountSource, ResolvedAccount

T = TypeVar("T")


class AccountGoneError(ProviderError):
    """The account the charge went through was deleted: nobody can ask the provider through it."""


class PluginFailedError(Exception):
    """The provider's adapter, asked, raised something other than a ``ProviderError``: its own bug.
    The plugin's exception is its ``__cause__``; its text is not repeated here (it may hold anything)."""

    def __init__(self, provider: str) -> None:
        super().__init__(f"the {provider} plugin failed while asked")
        self.provider = provider


async def _plugin_call(provider: str, call: Callable[[], Awaitable[T]]) -> T:
    """The adapter's answer to ``call``; its own exceptions other than a ``ProviderError`` as
    ``PluginFailedError``."""
    try:
        return await call()
    except ProviderError:
        raise
    except Exception as exc:
        raise PluginFailedError(provider) from exc


Asked = Unconfirmed | PendingCharge | HeldRefund | LostRefund


@dataclass(slots=True)
class PaymentLookup:
    accounts: AccountSource | None
    plugins: PluginHost

    def can_look_up(self, provider: str) -> bool:
        return self._declares(provider, Capability.PAYMENT_LOOKUP)

    def can_read_status(self, provider: str) -> bool:
        return self._declares(provider, Capability.PAYMENT_STATUS)

    def can_look_up_refund(self, provider: str) -> bool:
        return self._declares(provider, Capability.REFUND_LOOKUP)

    def can_read_refund(self, provider: str) -> bool:
        return self._declares(provider, Capability.REFUND_STATUS)

    def _declares(self, provider: str, capability: Capability) -> bool:
        try:
            plugin = self.plugins.get(provider)
        except UnknownProviderError:
            return False
        return capability in plugin.capabilities

    async def can_ask(self, asked: Asked, tenant_id: int) -> bool:
        """Whether the provider can be asked about this charge or refund: it declares
        ``payment_lookup`` (a charge never confirmed), ``payment_status`` (one it holds as pending),
        ``refund_lookup`` (a refund never confirmed) or ``refund_status`` (a refund it holds as
        pending), and the account it went through still exists."""
        if not self.capable(asked):
            return False
        # Without an account source this process cannot tell: ``find`` and ``status`` say so when asked.
        return self.accounts is None or await self._account(asked, tenant_id) is not None

    def capable(self, charge: Asked) -> bool:
        """Whether the provider declares the capability this charge or refund is asked through."""
        if isinstance(charge, Unconfirmed):
            return self.can_look_up(charge.provider)
        if isinstance(charge, LostRefund):
            return self.can_look_up_refund(charge.provider)
        if isinstance(charge, HeldRefund):
            return self.can_read_refund(charge.provider)
        return self.can_read_status(charge.provider)

    async def _account(self, charge: Asked, tenant_id: int) -> ResolvedAccount | None:
        """The account the charge went through, if it still exists (and is the payment's)."""
        if self.accounts is None:
            raise ProviderError("no provider account source is configured in this process")
        account = await self.accounts.account(charge.account_id)
        if account is None or account.tenant_id != tenant_id or account.provider != charge.provider:
            return None
        return account

    async def _asked(self, charge: Asked, tenant_id: int) -> ResolvedAccount:
        account = await self._account(charge, tenant_id)
        if account is None:
            raise AccountGoneError(f"provider account {charge.account_id} no longer exists")
        return account

    async def find(self, stuck: Unconfirmed, tenant_id: int) -> ChargeResult | None:
        """The provider's answer; ``RetryableProviderError`` when it cannot be reached."""
        account = await self._asked(stuck, tenant_id)
        adapter = account.adapter
        if not isinstance(adapter, PaymentLookupAdapter):
            raise ProviderError(f"{account.provider} declares payment_lookup but its adapter has no find_payment")
        return await _plugin_call(
            account.provider,
            lambda: adapter.find_payment(
                stuck.request, idempotency_key=stuck.idempotency_key, created_after=stuck.created_after
            ),
        )

    async def status(self, charge: PendingCharge, tenant_id: int) -> ChargeResult | None:
        """How the provider says the charge stands now; errors as for ``find``."""
        account = await self._asked(charge, tenant_id)
        adapter = account.adapter
        if not isinstance(adapter, PaymentStatusAdapter):
            raise ProviderError(f"{account.provider} declares payment_status but its adapter has no charge_status")
        return await _plugin_call(account.provider, lambda: adapter.charge_status(charge.provider_payment_id))

    async def refund_status(self, held: HeldRefund, tenant_id: int) -> RefundResult | None:
        """How the provider says the refund stands now; errors as for ``find``."""
        provider_refund_id = held.provider_refund_id
        if provider_refund_id is None:
            raise ProviderError("a refund never confirmed has no provider id to read it by")
        account = await self._asked(held, tenant_id)
        adapter = account.adapter
        if not isinstance(adapter, RefundStatusAdapter):
            raise ProviderError(f"{account.provider} declares refund_status but its adapter has no refund_status")
        return await _plugin_call(account.provider, lambda: adapter.refund_status(provider_refund_id))

    async def find_refund(self, lost: LostRefund, tenant_id: int) -> RefundResult | None:
        """The refund the provider made of this request, if any; errors as for ``find``."""
        account = await self._asked(lost, tenant_id)
        adapter = account.adapter
        if not isinstance(adapter, RefundLookupAdapter):
            raise ProviderError(f"{account.provider} declares refund_lookup but its adapter has no find_refund")
        return await _plugin_call(
            account.provider,
            lambda: adapter.find_refund(
                lost.request, idempotency_key=lost.idempotency_key, created_after=lost.created_after
            ),
        )
