"""Which outbox rows a local change needs. Never commits: the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from billplane.api.problems import ConflictError, InvalidFieldError
from billplane.catalog.models import Plan, Product
from billplane.customers.models import Customer
from billplane.plugins.contract import Capability
from billplane.plugins.errors import UnknownProviderError
from billplane.plugins.host import PluginHost
from billplane.provider_accounts.repository import ProviderAccountRepository
from billplane.subscriptions.models import Subscription
from billplane.sync import provider_plans
from billplane.sync.catalog_edits import MIRRORED_PLAN_FIELDS, MIRRORED_PRODUCT_FIELDS
from billplane.sync.writer import OutboxWriter

# (account id, provider) of the accounts that have a catalog object (``provider_plans``).
AccountsOf = Callable[[AsyncSession, int], Awaitable[list[tuple[int, str]]]]

# Customer fields a provider mirrors; a change of external_id alone needs no provider call.
MIRRORED_CUSTOMER_FIELDS = frozenset({"email", "name", "metadata"})


class SyncService:
    def __init__(self, writer: OutboxWriter, plugins: PluginHost | None = None) -> None:
        self.writer = writer
        self.outbox = writer.repository
        self.plugins = plugins

    async def created_object_params(self) -> dict[str, Any]:
        """For the one statement that creates a mirrored object (``with_outbox_rows``): its outbox
        rows go to the tenant's default accounts, and its sync status says whether there are any."""
        return await self.writer.insert_params()

    async def customer_changed(self, customer: Customer, fields: set[str]) -> None:
        if fields & MIRRORED_CUSTOMER_FIELDS:
            await self._to_known_accounts(customer, "customer.update")

    async def customer_deleted(self, customer: Customer) -> None:
        await self._to_known_accounts(customer, "customer.delete")

    async def _to_known_accounts(self, customer: Customer, kind: str) -> None:
        """Rows for every account that has the customer or is about to (a pending create)."""
        accounts = {int(ref["provider_account_id"]) for ref in customer.provider_ids}
        if customer.sync_status == "pending":  # else no create can be pending: spare the query
            accounts |= {
                row.provider_account_id
                for row in await self.outbox.pending_for_object("customer", customer.id)
                if row.kind == "customer.ensure"
            }
        live = await self.writer.live(sorted(accounts))
        if live:
            customer.sync_status = "pending"
            await self.writer.write(kind, customer.id, live)

    async def sync_customer(self, customer: Customer) -> bool:
        """A manual sync: retry what failed, hurry what waits, and create it where it is missing.

        Failed rows are retried as new rows (new idempotency keys: a provider may have stored the
        failed answer under the old one). Returns whether anything was queued.
        """
        queued = await self._retry_failed("customer", customer.id)
        mapped = {int(ref["provider_account_id"]) for ref in customer.provider_ids}
        latest = await self.outbox.latest_per_kind("customer", customer.id)
        # A create still under way; a done one whose mapping is gone (the customer was deleted at the
        # provider) does not count: the customer is missing there again.
        ensured = {row.provider_account_id for row in latest if row.kind == "customer.ensure" and row.status != "done"}
        if customer.deleted_at is None:
            missing = [a for a in await self.writer.default_account_ids() if a not in mapped and a not in ensured]
            queued |= bool(await self.writer.write("customer.ensure", customer.id, missing))
        if queued:
            customer.sync_status = "pending"
        return queued

    async def product_changed(self, product: Product, fields: set[str]) -> None:
        """After a product's edit (``fields``: those whose value changed): a ``product.update`` row
        for each account that has it, when what providers show of it changed. An account without it
        gets nothing now, and the product as it is when a subscription first needs it there."""
        if fields & MIRRORED_PRODUCT_FIELDS:
            await self._catalog_changed("product.update", product, provider_plans.product_accounts)

    async def plan_changed(self, plan: Plan, fields: set[str]) -> None:
        """After a plan's edit: a ``plan.update`` row for each account that has its price, when it
        was archived or made active again."""
        if fields & MIRRORED_PLAN_FIELDS:
            await self._catalog_changed("plan.update", plan, provider_plans.plan_accounts)

    async def resend_product(self, product: Product) -> bool:
        """A manual sync: the product as it is, to every account that has it (after a failed row,
        say). Returns whether anything was queued."""
        return await self._catalog_changed("product.update", product, provider_plans.product_accounts)

    async def resend_plan(self, plan: Plan) -> bool:
        """A manual sync of the plan's price (active or not) to every account that has it."""
        return await self._catalog_changed("plan.update", plan, provider_plans.plan_accounts)

    async def _catalog_changed(self, kind: str, changed: Product | Plan, accounts_of: AccountsOf) -> bool:
        session = self.writer.session
        # The edit's UPDATE first, the accounts second: a job recording a new account for this
        # object locks the row before it reads it (``catalog_edits.missed_edits``), so an account
        # this read cannot see yet is one whose job waits for this edit and queues it itself.
        await session.flush()
        mirrored = await accounts_of(session, changed.id)
        accounts = [account for account, provider in mirrored if self._declares(provider, Capability.CATALOG_UPDATES)]
        accounts = await self.writer.live(accounts)
        if accounts:
            changed.sync_status = "pending"
            await self.writer.write(kind, changed.id, accounts)
        return bool(accounts)

    def _declares(self, provider: str, capability: Capability) -> bool:
        """Whether ``provider``'s plugin declares ``capability`` (catalog or metadata edits); billplane
        asks no adapter for what its plugin did not declare. Without a plugin host, every one is asked."""
        if self.plugins is None:
            return True
        try:
            return capability in self.plugins.get(provider).capabilities
        except UnknownProviderError:
            return False

    async def sync_subscription(self, subscription: Subscription) -> bool:
        """Mirror a subscription to its account (or the tenant's default): the service-level entry
        point the billing engine calls after creating one, and what the manual sync route runs."""
        queued = await self._retry_failed("subscription", subscription.id)
        if subscription.provider_subscription_id is None and not queued:
            latest = await self.outbox.latest_per_kind("subscription", subscription.id)
            if not any(row.kind == "subscription.create" for row in latest):
                queued = await self._create_subscription(subscription)
        if queued:
            subscription.sync_status = "pending"
        return queued

    async def _create_subscription(self, subscription: Subscription) -> bool:
        account = subscription.provider_account_id
        if account is None:
            defaults = await self.writer.default_account_ids()
            if not defaults:
                return False
            account = defaults[0]
        elif not await self.writer.live([account]):
            return False  # its account was deleted (it has ended: a live one keeps its account)
        await self.refuse_unsupported_plan(account, subscription.plan_id)
        # The provider subscription needs the customer there first: queue that too if nobody has.
        customer = await self.writer.session.get(Customer, subscription.customer_id)
        if customer is not None:
            mapped = {int(ref["provider_account_id"]) for ref in customer.provider_ids}
            pending = await self.outbox.pending_for_object("customer", customer.id)
            if account not in mapped and not any(row.provider_account_id == account for row in pending):
                await self.writer.write("customer.ensure", customer.id, [account])
                customer.sync_status = "pending"
        await self.writer.write("subscription.create", subscription.id, [account])
        return True

    async def subscription_changed(self, subscription: Subscription, kind: str) -> None:
        """Queue ``kind`` (subscription.update, .pause, .resume, .cancel) for the subscription's
        account; a subscription not mirrored anywhere needs none. Each row sends the state current
        when it runs.

        One made before the tenant had an account, and synced since, has no account yet while its
        create is pending (the create records it): the change goes to the create's account, after
        it. A create retried sends what its first attempt sent, so the change must follow."""
        account = await self._subscription_account(subscription)
        if account is None:
            return
        subscription.sync_status = "pending"
        await self.writer.write(kind, subscription.id, [account])

    async def subscription_metadata_changed(self, subscription: Subscription) -> None:
        """Queue the tenant's edit of a subscription's metadata for its account (as
        ``subscription_changed``), when its provider mirrors such edits (``subscription_metadata``);
        another provider keeps the metadata its create sent. An ended subscription's too: Stripe
        takes a canceled subscription's metadata."""
        account = await self._subscription_account(subscription)
        if account is None:
            return
        provider = await self.provider_of(account)
        if provider is None or not self._declares(provider, Capability.SUBSCRIPTION_METADATA):
            return
        subscription.sync_status = "pending"
        await self.writer.write("subscription.metadata", subscription.id, [account])

    async def _subscription_account(self, subscription: Subscription) -> int | None:
        account = subscription.provider_account_id
        if account is None:
            pending = await self.outbox.pending_for_object("subscription", subscription.id)
            creates = [row.provider_account_id for row in pending if row.kind == "subscription.create"]
            account = creates[0] if creates else None
        return account

    async def account_for_new_subscription(self, requested: int | None) -> int | None:
        """The account a new subscription is mirrored to: the one asked for (422 unless it is the
        tenant's and live), else the tenant's default account, else none."""
        if requested is not None:
            account = await ProviderAccountRepository(self.writer.session, self.writer.tenant_id).get_live(requested)
            if account is None:
                raise InvalidFieldError("provider_account_id", f"no provider account {requested}")
            return account.id
        defaults = await self.writer.default_account_ids()
        return defaults[0] if defaults else None

    async def provider_of(self, account_id: int) -> str | None:
        account = await ProviderAccountRepository(self.writer.session, self.writer.tenant_id).get_live(account_id)
        return None if account is None else account.provider

    def bills_subscriptions(self, provider: str | None) -> bool:
        """Whether ``provider`` invoices the subscriptions it holds (ProviderPlugin.bills_subscriptions):
        then billplane invoices none of their periods, as the billing run leaves them out."""
        if provider is None or self.plugins is None:
            return False
        try:
            return self.plugins.get(provider).bills_subscriptions
        except UnknownProviderError:
            return False

    async def refuse_without_capability(self, account_id: int, capability: Capability, what: str) -> None:
        """409 when the subscription's provider cannot do ``what`` (pause at a provider without it)."""
        provider = await self.provider_of(account_id)
        if provider is None or self.plugins is None:
            return
        try:
            plugin = self.plugins.get(provider)
        except UnknownProviderError:
            return
        if capability not in plugin.capabilities:
            raise ConflictError(f"{provider} accounts cannot {what} a subscription")

    async def refuse_unsupported_plan(self, account_id: int, plan_id: int) -> None:
        """422 naming ``plan_id`` when the account's provider cannot bill the plan's pricing model
        (PayPal has no metered or package pricing): refused before anything is queued."""
        if self.plugins is None:
            return
        account = await ProviderAccountRepository(self.writer.session, self.writer.tenant_id).get_live(account_id)
        plan = await self.writer.session.get(Plan, plan_id)
        if account is None or plan is None:
            return  # the sync itself reports a missing account or plan
        try:
            plugin = self.plugins.get(account.provider)
        except UnknownProviderError:
            return
        if plan.pricing_model not in plugin.pricing_models:
            supported = ", ".join(sorted(plugin.pricing_models)) or "none"
            raise InvalidFieldError(
                "plan_id",
                f"{account.provider} accounts cannot bill {plan.pricing_model} plans (account {account.id} "
                f"supports: {supported})",
            )

    async def _retry_failed(self, object_type: str, object_id: int) -> bool:
        failed = await self.outbox.failed_for_object(object_type, object_id)  # none at a deleted account
        woken = await self.outbox.wake(object_type, object_id)
        self.writer.ring(woken)
        for row in failed:
            await self.writer.write(row.kind, object_id, [row.provider_account_id])
        return bool(failed or woken)
