"""All SQL for provider accounts.

The table is in the control schema, shared by every tenant: each query of the API's repository
names the tenant, so an id of another tenant finds nothing (404). The request's session is scoped
to the tenant's schema; control tables are schema-qualified, so the same transaction covers both.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, exists, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.db.mixins import MAX_ID
from billplane.payments.models import Payment, Refund
from billplane.provider_accounts.models import ProviderAccount
from billplane.subscriptions.models import LIVE_STATUSES, Subscription
from billplane.sync.unsent import unsent_subscription_changes
from billplane_tenants import Tenant

_NEXT_ID = text("SELECT nextval(pg_get_serial_sequence('control.provider_accounts', 'id'))")
_LIVE = ProviderAccount.status == "active"


class ProviderAccountRepository:
    """One tenant's accounts."""

    def __init__(self, session: AsyncSession, tenant_id: int) -> None:
        self.session = session
        self.tenant_id = tenant_id

    async def next_id(self) -> int:
        """An id for a new account, drawn before the insert: the ciphertexts' associated data names it."""
        return int(await self.session.scalar(_NEXT_ID))

    async def get_live(
        self, account_id: int, *, for_update: bool = False, for_share: bool = False
    ) -> ProviderAccount | None:
        """The tenant's live account. ``for_share``: held until the caller commits, so that a
        deletion (which locks the account for update) waits for money the caller sends through
        it, and one under way makes the caller wait and then find the account gone."""
        if not 1 <= account_id <= MAX_ID:
            return None
        query = select(ProviderAccount).where(
            ProviderAccount.id == account_id, ProviderAccount.tenant_id == self.tenant_id, _LIVE
        )
        if for_update:
            query = query.with_for_update()
        elif for_share:
            query = query.with_for_update(read=True)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def page_live(self, *, provider: str | None, after: int | None, limit: int) -> list[ProviderAccount]:
        where: list[ColumnElement[bool]] = [ProviderAccount.tenant_id == self.tenant_id, _LIVE]
        if provider is not None:
            where.append(ProviderAccount.provider == provider)
        if after is not None:
            where.append(ProviderAccount.id > after)
        query = select(ProviderAccount).where(*where).order_by(ProviderAccount.id).limit(limit + 1)
        return list((await self.session.execute(query)).scalars())

    async def has_live_account(self, provider: str) -> bool:
        query = select(ProviderAccount.id).where(
            ProviderAccount.tenant_id == self.tenant_id, ProviderAccount.provider == provider, _LIVE
        )
        return bool(await self.session.scalar(select(exists(query))))

    async def default_id(self, provider: str) -> int | None:
        query = select(ProviderAccount.id).where(
            ProviderAccount.tenant_id == self.tenant_id,
            ProviderAccount.provider == provider,
            ProviderAccount.is_default,
            _LIVE,
        )
        return await self.session.scalar(query)

    async def live_ids(self, account_ids: Sequence[int]) -> set[int]:
        """Those of ``account_ids`` that are the tenant's and not deleted."""
        if not account_ids:
            return set()
        query = select(ProviderAccount.id).where(
            ProviderAccount.tenant_id == self.tenant_id, ProviderAccount.id.in_(account_ids), _LIVE
        )
        return set(await self.session.scalars(query))

    async def default_ids(self) -> tuple[int, ...]:
        """Ids of the tenant's default accounts (one per provider), in id order."""
        query = (
            select(ProviderAccount.id)
            .where(ProviderAccount.tenant_id == self.tenant_id, ProviderAccount.is_default, _LIVE)
            .order_by(ProviderAccount.id)
        )
        return tuple(await self.session.scalars(query))

    async def unset_default(self, provider: str, *, other_than: int) -> list[ProviderAccount]:
        """The accounts that stopped being the default (at most one), as they are now."""
        statement = (
            update(ProviderAccount)
            .where(
                ProviderAccount.tenant_id == self.tenant_id,
                ProviderAccount.provider == provider,
                ProviderAccount.id != other_than,
                ProviderAccount.is_default,
            )
            .values(is_default=False, updated_at=func.now())
            .returning(ProviderAccount)
            .execution_options(populate_existing=True)
        )
        return list((await self.session.scalars(statement)).all())

    async def add(self, account: ProviderAccount) -> ProviderAccount:
        self.session.add(account)
        await self.session.flush()
        await self.session.refresh(account)
        return account

    async def save(self, account: ProviderAccount) -> ProviderAccount:
        await self.session.flush()
        await self.session.refresh(account)
        return account

    async def used_by_live_subscriptions(self, account_id: int) -> bool:
        """Whether a live subscription in the tenant's own schema (the session's scope) uses the account."""
        live = select(Subscription.id).where(
            Subscription.provider_account_id == account_id, Subscription.status.in_(LIVE_STATUSES)
        )
        return bool(await self.session.scalar(select(exists(live))))

    async def changes_unsent(self, account_id: int) -> bool:
        """Whether a subscription change (a cancellation, say) has not reached the account's provider."""
        return bool(await self.session.scalar(select(exists(unsent_subscription_changes(account_id)))))

    async def money_in_flight(self, account_id: int) -> bool:
        """Whether a payment or refund through the account is still pending: its worker, its
        reconciliation and the provider's webhook all need the account to settle it."""
        payments = select(Payment.id).where(Payment.provider_account_id == account_id, Payment.status == "pending")
        refunds = (
            select(Refund.id)
            .join(Payment, Payment.id == Refund.payment_id)
            .where(Payment.provider_account_id == account_id, Refund.status == "pending")
        )
        return bool(await self.session.scalar(select(exists(payments) | exists(refunds))))

    async def mark_deleted(self, account: ProviderAccount) -> None:
        """Keep the row (tenant tables name its id) but drop its secrets: nothing left to leak."""
        account.status = "deleted"
        account.deleted_at = datetime.now(UTC)
        account.is_default = False
        account.credentials_ciphertext = None
        account.credentials_key_id = None
        account.webhook_secret_ciphertext = None
        account.previous_webhook_secret_ciphertext = None  # still accepted for a while, so a secret too
        account.previous_webhook_secret_until = None
        await self.session.flush()


class AccountLookup:
    """Accounts of any tenant, by id, for code outside a tenant's request (sync, webhooks, rotation)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def live_with_schema(self, account_id: int) -> tuple[ProviderAccount, str] | None:
        if not 1 <= account_id <= MAX_ID:
            return None
        query = (
            select(ProviderAccount, Tenant.schema_name)
            .join(Tenant, Tenant.id == ProviderAccount.tenant_id)
            .where(ProviderAccount.id == account_id, _LIVE)
        )
        row = (await self.session.execute(query)).one_or_none()
        return None if row is None else (row[0], row[1])

    async def defaults_with_schema(self, tenant_id: int) -> list[tuple[ProviderAccount, str]]:
        query = (
            select(ProviderAccount, Tenant.schema_name)
            .join(Tenant, Tenant.id == ProviderAccount.tenant_id)
            .where(ProviderAccount.tenant_id == tenant_id, ProviderAccount.is_default, _LIVE)
            .order_by(ProviderAccount.provider)
        )
        return [(row[0], row[1]) for row in (await self.session.execute(query)).all()]

    async def sealed_under_other_keys(self, current_key_id: str, *, after: int, limit: int) -> list[ProviderAccount]:
        """Live accounts whose secrets another key sealed, in id order, locked until the transaction ends."""
        query = (
            select(ProviderAccount)
            .where(_LIVE, ProviderAccount.credentials_key_id != current_key_id, ProviderAccount.id > after)
            .order_by(ProviderAccount.id)
            .limit(limit)
            .with_for_update()
        )
        return list((await self.session.execute(query)).scalars())

    async def count_by_key(self) -> dict[str, int]:
        query = (
            select(ProviderAccount.credentials_key_id, func.count())
            .where(_LIVE)
            .group_by(ProviderAccount.credentials_key_id)
        )
        return {str(key_id): int(count) for key_id, count in (await self.session.execute(query)).all()}
