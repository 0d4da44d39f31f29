"""The seam between provider accounts and the code that calls providers (sync, webhooks).

Code that calls a provider never reads credentials itself: it asks an ``AccountSource`` for a
``ResolvedAccount``, which carries a ready adapter built from that one tenant's decrypted
credentials (never a process-global API key).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from billplane.plugins.contract import Mode, ProviderAdapter


@dataclass(frozen=True, slots=True, kw_only=True)
class ResolvedAccount:
    id: int
    tenant_id: int
    tenant_schema: str
    provider: str
    mode: Mode
    is_default: bool
    adapter: ProviderAdapter
    # ProviderPlugin.bills_subscriptions: the provider invoices the subscriptions mirrored here, so
    # their periods are the provider's; else billplane bills them and the periods are billplane's.
    bills_subscriptions: bool
    # The account's own secret strings (credentials and webhook secrets, 4 characters and more):
    # what a provider's error may echo, scrubbed from it by name before it is stored or logged.
    secrets: tuple[str, ...] = ()


class AccountSource(Protocol):
    async def account(self, account_id: int) -> ResolvedAccount | None:
        """The account with this id (any tenant), or None if it does not exist or was deleted."""

    async def default_accounts(self, tenant_id: int) -> list[ResolvedAccount]:
        """The tenant's default account of each provider: where new objects are mirrored."""

    async def default_account_ids(self, session: AsyncSession, tenant_id: int) -> tuple[int, ...]:
        """Just the ids of ``default_accounts``, in id order, read through the caller's session.

        A request asks this while it holds its own connection: taking a second one from a fixed
        pool could deadlock under load, and building adapters would be wasted work.
        """

    async def live_account_ids(self, session: AsyncSession, tenant_id: int, account_ids: Sequence[int]) -> set[int]:
        """Those of ``account_ids`` that are the tenant's and not deleted, read through the caller's session."""
