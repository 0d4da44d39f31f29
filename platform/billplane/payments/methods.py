"""A customer's payment methods: registered from a provider's token, listed, detached.

billplane never sees card data: the tenant's front end collects it with the provider's own form
(Stripe.js, say), which answers with a token, and the tenant registers that token here. The
provider is asked to make it chargeable off-session for the customer (``attach_payment_method``,
the ``payment_methods`` capability), and billplane keeps what identifies it to a person: type,
brand, last 4 digits, expiry.

The provider is asked before anything is locked: a slow provider holds no row another request
waits for. Then the customer's row is locked (``locked_live``, as every write for a customer),
checked again, and the method written. The call carries a key derived from the account, the
customer (and its id at the provider) and the token, so a request retried after a lost answer
attaches once. A detach asks the provider first the same way, then detaches here. The account is
read through the request's own session, never a second connection (a burst of registrations could
otherwise hold every connection and wait for one more).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from litestar.exceptions import NotFoundException, ServiceUnavailableException
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.api.problems import ConflictError, InvalidFieldError
from billplane.customers.models import Customer, ProviderCustomer
from billplane.customers.repository import CustomerRepository
from billplane.db.mixins import MAX_ID
from billplane.payments import method_changes
from billplane.payments.method_schemas import PaymentMethodAttach
from billplane.payments.models import PaymentMethod
from billplane.plugins.contract import CUSTOMER_NOT_SYNCED, Capability, PaymentMethodAdapter, ProviderPaymentMethod
from billplane.plugins.errors import ProviderError, RetryableProviderError, UnknownProviderError
from billplane.plugins.host import PluginHost
from billplane.provider_accounts.masking import secret_strings
from billplane.provider_accounts.models import ProviderAccount
from billplane.provider_accounts.repository import ProviderAccountRepository
from billplane.provider_accounts.vault import AccountVault, CredentialsUnavailableError
from billplane.sync.failure_text import provider_failure


@dataclass(frozen=True, slots=True)
class _Account:
    """A provider account of the tenant, ready to ask: its row's facts and an adapter."""

    id: int
    provider: str
    adapter: PaymentMethodAdapter
    secrets: tuple[str, ...]


@dataclass(slots=True)
class PaymentMethods:
    session: AsyncSession
    tenant_id: int
    plugins: PluginHost
    vault: AccountVault

    async def attach(self, customer_id: int, data: PaymentMethodAttach) -> PaymentMethod:
        await self._customer(customer_id)
        account = await self._account(data.provider_account_id)
        earlier = await self._registered(account.id, data.token, customer_id)  # another customer's: refused now
        asked_at = _whole_second()
        details = await self._attached(account, customer_id, data.token, default=data.default, earlier=earlier)
        await self._customer(customer_id, locked=True)  # deleted meanwhile: 404, nothing written
        method = await self._registered(account.id, details.provider_payment_method_id, customer_id, locked=True)
        before = method_changes.shown(method)  # None: not attached; a retry that changes nothing emits nothing
        if method is None:
            method = PaymentMethod(
                customer_id=customer_id,
                provider=account.provider,
                provider_account_id=account.id,
                provider_payment_method_id=details.provider_payment_method_id,
            )
        method_changes.described(method, details)
        method.detached_at = None
        # Attached at the provider now: its events from before (a detach delivered late) are stale.
        method_changes.watermarked(method, asked_at)
        if data.default:
            await method_changes.cleared_default(self.session, customer_id, account.id, keeping=method.id)
            method.is_default = True
        await self._saved(method)
        await method_changes.announced(self.session, method, before)
        return method

    async def page(self, customer_id: int, *, after: int | None, limit: int) -> list[PaymentMethod]:
        """Attached methods, oldest first, fetched ``limit + 1`` (``page_of``)."""
        await self._customer(customer_id)
        query = select(PaymentMethod).where(
            PaymentMethod.customer_id == customer_id, PaymentMethod.detached_at.is_(None)
        )
        if after is not None:
            query = query.where(PaymentMethod.id > after)
        return list((await self.session.execute(query.order_by(PaymentMethod.id).limit(limit + 1))).scalars())

    async def detach(self, customer_id: int, method_id: int) -> None:
        """billplane stops charging it, and the provider is asked to detach it first (Stripe: it is
        then no longer the customer's default there). A provider that refuses leaves it attached
        (409); one that cannot be asked, too (503). Its account deleted, it is detached here only."""
        await self._customer(customer_id)
        method = await self._attached_method(customer_id, method_id)
        asked_at = _whole_second()
        await self._detached_at_provider(method)
        await self._customer(customer_id, locked=True)  # deleted meanwhile: 404, nothing written
        method = await self._attached_method(customer_id, method_id, locked=True)  # detached meanwhile: 404
        method_changes.watermarked(method, asked_at)
        await method_changes.detached(self.session, method)

    async def _customer(self, customer_id: int, *, locked: bool = False) -> Customer:
        customer = await CustomerRepository(session=self.session).get_live(customer_id, locked=locked)
        if customer is None:  # another tenant's id looks exactly like an id that never existed
            raise NotFoundException(f"no customer {customer_id}")
        return customer

    async def _attached_method(self, customer_id: int, method_id: int, *, locked: bool = False) -> PaymentMethod:
        query = select(PaymentMethod).where(
            PaymentMethod.id == method_id,
            PaymentMethod.customer_id == customer_id,
            PaymentMethod.detached_at.is_(None),
        )
        if locked:
            query = query.with_for_update().execution_options(populate_existing=True)
        found = None if not 1 <= method_id <= MAX_ID else (await self.session.execute(query)).scalar_one_or_none()
        if found is None:
            raise NotFoundException(f"customer {customer_id} has no payment method {method_id}")
        return found

    async def _account(self, account_id: int | None) -> _Account:
        """The tenant's account (its default if None), checked before its secrets are opened."""
        accounts = ProviderAccountRepository(self.session, self.tenant_id)
        if account_id is None:
            defaults = await accounts.default_ids()
            if not defaults:
                raise InvalidFieldError("provider_account_id", "the tenant has no default provider account: name one")
            account_id = defaults[0]
        row = await accounts.get_live(account_id)
        if row is None:
            raise InvalidFieldError("provider_account_id", f"no provider account {account_id}")
        try:
            plugin = self.plugins.get(row.provider)
        except UnknownProviderError as exc:
            raise InvalidFieldError("provider_account_id", f"the {row.provider} provider is not installed") from exc
        if Capability.PAYMENT_METHODS not in plugin.capabilities:
            raise InvalidFieldError(
                "provider_account_id",
                f"the {row.provider} provider cannot register payment methods (payment_methods capability)",
            )
        account = self._opened(row)
        if account is None:
            raise InvalidFieldError("provider_account_id", f"the {row.provider} provider has no attach_payment_method")
        return account

    def _opened(self, row: ProviderAccount) -> _Account | None:
        """An adapter for the account (None: its plugin has no ``PaymentMethodAdapter``)."""
        try:
            opened = self.vault.open(row)
        except CredentialsUnavailableError as exc:
            raise ConflictError(f"provider account {row.id}'s credentials cannot be read: send them again") from exc
        adapter = self.plugins.adapter(
            row.provider, tenant_id=self.tenant_id, account_id=row.id, mode=row.mode, credentials=opened.credentials
        )
        if not isinstance(adapter, PaymentMethodAdapter):
            return None
        return _Account(row.id, row.provider, adapter, tuple(secret_strings(opened.credentials)))

    async def _detached_at_provider(self, method: PaymentMethod) -> None:
        """Ask the method's provider to detach it, before anything is locked. Nothing to ask when
        its account is deleted or its provider no longer installed or able: nothing can charge it
        through billplane then, and billplane detaches it alone."""
        row = await ProviderAccountRepository(self.session, self.tenant_id).get_live(method.provider_account_id)
        if row is None or not self._can_detach(row.provider):
            return
        account = self._opened(row)
        if account is None:
            return
        provider_customer = await self._provider_customer(method.customer_id, account.id)
        digest = hashlib.sha256(f"{account.id}:{method.id}:{method.provider_payment_method_id}".encode()).hexdigest()
        key = f"billplane-{self.tenant_id}-pmd-{digest[:32]}"
        try:
            await account.adapter.detach_payment_method(
                method.provider_payment_method_id, provider_customer, idempotency_key=key
            )
        except RetryableProviderError as exc:
            failure = provider_failure(exc, account.secrets)
            raise ServiceUnavailableException(
                f"the provider could not be asked (or did not answer in full), billplane detached nothing: "
                f"send the DELETE again: {failure}"
            ) from exc
        except ProviderError as exc:
            failure = provider_failure(exc, account.secrets)
            raise ConflictError(f"the provider refused to detach it, nothing was detached: {failure}") from exc

    def _can_detach(self, provider: str) -> bool:
        try:
            return Capability.PAYMENT_METHODS in self.plugins.get(provider).capabilities
        except UnknownProviderError:
            return False

    async def _provider_customer(self, customer_id: int, account_id: int) -> str | None:
        return await self.session.scalar(
            select(ProviderCustomer.provider_customer_id).where(
                ProviderCustomer.customer_id == customer_id, ProviderCustomer.provider_account_id == account_id
            )
        )

    async def _registered(
        self, account_id: int, token: str, customer_id: int, *, locked: bool = False
    ) -> PaymentMethod | None:
        """The customer's row of ``token`` at the account, if registered before (a retry, or one
        detached since); a 422 if it is another customer's. ``locked`` only after the provider
        call: no row is held while it is asked."""
        query = select(PaymentMethod).where(
            PaymentMethod.provider_account_id == account_id, PaymentMethod.provider_payment_method_id == token
        )
        if locked:
            query = query.with_for_update().execution_options(populate_existing=True)
        found = (await self.session.execute(query)).scalar_one_or_none()
        if found is not None and found.customer_id != customer_id:
            raise InvalidFieldError("token", "this payment method is registered for another customer")
        return found

    async def _attached(
        self, account: _Account, customer_id: int, token: str, *, default: bool, earlier: PaymentMethod | None
    ) -> ProviderPaymentMethod:
        provider_customer = await self._provider_customer(customer_id, account.id)
        key = self._attach_key(account.id, customer_id, provider_customer, token, earlier)
        try:
            details = await account.adapter.attach_payment_method(
                token, provider_customer, idempotency_key=key, default=default
            )
        except RetryableProviderError as exc:
            failure = provider_failure(exc, account.secrets)
            raise ServiceUnavailableException(
                f"the provider could not be asked, nothing was registered: {failure}"
            ) from exc
        except ProviderError as exc:
            if exc.code == CUSTOMER_NOT_SYNCED:
                raise ConflictError(
                    f"customer {customer_id} is not at provider account {account.id} yet: wait for its sync "
                    f"(sync_status), or hurry it with POST /v1/customers/{customer_id}/sync, then register again"
                ) from exc
            raise InvalidFieldError("token", provider_failure(exc, account.secrets)) from exc
        return details

    def _attach_key(
        self,
        account_id: int,
        customer_id: int,
        provider_customer: str | None,
        token: str,
        earlier: PaymentMethod | None,
    ) -> str:
        """The same for a retry of this request, another for a request that asks something else
        of the provider: a provider replays what it answered a key (Stripe, for a day), and a
        replayed attach is not made again. So the key names, with the token, the customer's id at
        the provider (re-created there, the same key with another customer would be refused) and
        when billplane last detached the method (registered again after a detach, it must be
        attached again, not replayed as attached: Stripe then refuses a method it detached). The
        default's own step is the adapter's to key (Stripe's names the default it replaces)."""
        detached = earlier.detached_at.isoformat() if earlier is not None and earlier.detached_at else None
        facts = [account_id, customer_id, provider_customer, token, detached]
        digest = hashlib.sha256(":".join(str(fact) for fact in facts).encode()).hexdigest()
        return f"billplane-{self.tenant_id}-pm-{digest[:32]}"

    async def _saved(self, method: PaymentMethod) -> None:
        """Flushed in a savepoint: the same token registered at once for another customer (who
        holds another row lock) loses the race on the unique key, a 422 as if registered first."""
        try:
            async with self.session.begin_nested():
                self.session.add(method)
                await self.session.flush()
        except IntegrityError as exc:
            raise InvalidFieldError("token", "this payment method is registered for another customer") from exc
        await self.session.refresh(method)


def _whole_second() -> datetime:
    """Now, to the second before: the watermark of billplane's own attach or detach, compared with
    the provider's event times (Stripe's are whole seconds, of its own clock). Cut down, an event
    the provider sends in the same second, after the change, is not taken for an older one."""
    return datetime.now(UTC).replace(microsecond=0)
