"""Collecting a billing run's invoices: charge them automatically.

As ``POST /v1/invoices/{id}/pay`` does (``charge_invoice``), for a whole batch of one tenant's new
invoices at once (``invoicing.write_finalized`` inserted them finalized): each charge is queued as
a pending payment and its outbox row, in the run's transaction. An invoice that cannot be charged
now (no provider account, no payment method) stays open for the tenant to pay or for dunning to
retry; that is not an error of the run.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import BigInteger, BindParameter, any_, bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.billing.invoicing import OPEN, Finalized
from billplane.payments.models import PaymentMethod
from billplane.payments.operations import PAYMENT_METHOD_KEY
from billplane.provider_accounts.models import ProviderAccount
from billplane.provider_accounts.repository import ProviderAccountRepository
from billplane.provider_accounts.resolved import AccountSource
from billplane.sync.accounts import DefaultAccountCache
from billplane.sync.channel import OUTBOX_CHANNEL, notify_payload
from billplane.sync.queue import JobQueue
from billplane.sync.writer import OutboxWriter

logger = logging.getLogger("billplane.billing")
# The pending payments and their ``payment.charge`` outbox rows, in one statement that also tells
# the workers (``billplane.sync.channel``, delivered at commit) as creates and usage reports do: the
# worker's outbox listener defers their jobs, so a run does no queue work of its own. Deferring a
# job per charge from the run cost more than the rest of billing once it fell behind
# (docs/performance.md, "Billing runs").
_INSERT_CHARGES = text(
    "WITH p AS (INSERT INTO payments (customer_id, invoice_id, amount, currency, status, provider, "
    "provider_account_id, refunded_amount, metadata) "
    "SELECT c, i, a, cur, 'pending', p, pa, 0, m::jsonb FROM unnest(CAST(:customers AS bigint[]), "
    "CAST(:invoices AS bigint[]), CAST(:amounts AS bigint[]), CAST(:currencies AS text[]), "
    "CAST(:providers AS text[]), CAST(:accounts AS bigint[]), CAST(:metadata AS text[])) "
    "WITH ORDINALITY AS u(c, i, a, cur, p, pa, m, n) ORDER BY n RETURNING id, provider_account_id) "
    ", o AS (INSERT INTO outbox (kind, object_id, provider_account_id) "
    "SELECT 'payment.charge', id, provider_account_id FROM p ORDER BY id RETURNING id) "
    "SELECT count(*) AS queued, (SELECT pg_notify(:channel, :payload)) AS sent FROM o"
)


class _RefusedError(Exception):
    """An invoice that cannot be charged now; it stays open."""


async def collect(
    session: AsyncSession,
    invoices: list[Finalized],
    *,
    tenant: tuple[int, str],
    queue: JobQueue,
    accounts: AccountSource | None,
    defaults: DefaultAccountCache,
) -> None:
    due = [invoice for invoice in invoices if invoice.status == OPEN]  # not paid at finalization
    if due:
        tenant_id, schema = tenant
        await _Charges(session, OutboxWriter(session, tenant_id, schema, queue, accounts, defaults)).queue(due)


class _Method(NamedTuple):
    """What choosing a payment method reads of one."""

    id: int
    customer_id: int
    provider_account_id: int


@dataclass(frozen=True, slots=True)
class _Terms:
    """How a subscription's invoices are charged."""

    provider_account_id: int | None
    payment_method_id: int | None


@dataclass(slots=True)
class _Charges:
    """``charge_invoice`` for many invoices: account and payment method of each, looked up together."""

    session: AsyncSession
    writer: OutboxWriter

    async def queue(self, invoices: Sequence[Finalized]) -> None:
        # The subscription's terms as the run locked them (crossing a boundary does not change them).
        subscriptions: dict[int, _Terms | None] = {
            invoice.id: _Terms(invoice.provider_account_id, invoice.payment_method_id)
            for invoice in invoices
            if invoice.subscription_id is not None
        }
        account_ids = {invoice.id: await self._account_id(subscriptions.get(invoice.id)) for invoice in invoices}
        live = await self._accounts({account for account in account_ids.values() if account is not None})
        chosen = await self._methods(invoices, subscriptions, account_ids)
        payments: list[tuple[Finalized, ProviderAccount, _Method]] = []
        for invoice in invoices:
            try:
                account = self._account(account_ids[invoice.id], live)
                method = self._method(invoice, subscriptions.get(invoice.id), account.id, chosen)
            except _RefusedError as refused:
                logger.info("invoice %s of %s stays open: %s", invoice.id, self.writer.schema, refused)
                continue
            payments.append((invoice, account, method))
        if not payments:
            return
        rows = {
            "customers": [invoice.customer_id for invoice, _, _ in payments],
            "invoices": [invoice.id for invoice, _, _ in payments],
            "amounts": [invoice.amount_due for invoice, _, _ in payments],
            "currencies": [invoice.currency for invoice, _, _ in payments],
            "providers": [account.provider for _, account, _ in payments],
            "accounts": [account.id for _, account, _ in payments],
            "metadata": [json.dumps({PAYMENT_METHOD_KEY: str(method.id)}) for _, _, method in payments],
        }
        notify = {"channel": OUTBOX_CHANNEL, "payload": notify_payload(self.writer.tenant_id, self.writer.schema)}
        await self.session.execute(_INSERT_CHARGES, {**rows, **notify})

    async def _account_id(self, subscription: _Terms | None) -> int | None:
        if subscription is not None and subscription.provider_account_id is not None:
            return subscription.provider_account_id
        defaults = await self.writer.default_account_ids()
        return defaults[0] if defaults else None

    async def _accounts(self, ids: set[int]) -> dict[int, ProviderAccount]:
        repository = ProviderAccountRepository(self.session, self.writer.tenant_id)
        found = {account_id: await repository.get_live(account_id) for account_id in sorted(ids)}
        return {account_id: account for account_id, account in found.items() if account is not None}

    @staticmethod
    def _account(account_id: int | None, live: dict[int, ProviderAccount]) -> ProviderAccount:
        if account_id is None:
            raise _RefusedError("the tenant has no provider account to charge through: connect one first")
        account = live.get(account_id)
        if account is None:
            raise _RefusedError(f"provider account {account_id} no longer exists: connect an account to charge through")
        return account

    async def _methods(
        self,
        invoices: Sequence[Finalized],
        subscriptions: dict[int, _Terms | None],
        account_ids: dict[int, int | None],
    ) -> dict[tuple[str, int, int], _Method]:
        """Attached methods by ("id", method id, customer) and ("default", customer, account)."""
        named = {s.payment_method_id for s in subscriptions.values() if s is not None and s.payment_method_id}
        customers = {invoice.customer_id for invoice in invoices}
        accounts = {account for account in account_ids.values() if account is not None}
        attached = PaymentMethod.detached_at.is_(None)
        columns = (PaymentMethod.id, PaymentMethod.customer_id, PaymentMethod.provider_account_id)
        found: dict[tuple[str, int, int], _Method] = {}
        if named:
            query = select(*columns).where(PaymentMethod.id == any_(_ids("named", named)), attached)
            for method in map(_Method._make, await self.session.execute(query)):
                found["id", method.id, method.customer_id] = method
        if accounts:
            query = (
                select(*columns)
                .where(
                    PaymentMethod.customer_id == any_(_ids("customers", customers)),
                    PaymentMethod.provider_account_id.in_(accounts),
                    PaymentMethod.is_default.is_(True),
                    attached,
                )
                .order_by(PaymentMethod.id)
            )
            for method in map(_Method._make, await self.session.execute(query)):
                found["default", method.customer_id, method.provider_account_id] = method  # the newest wins
        return found

    @staticmethod
    def _method(
        invoice: Finalized,
        subscription: _Terms | None,
        account_id: int,
        found: dict[tuple[str, int, int], _Method],
    ) -> _Method:
        chosen = subscription.payment_method_id if subscription is not None else None
        if chosen is None:
            method = found.get(("default", invoice.customer_id, account_id))
            if method is None:
                raise _RefusedError(
                    f"the customer has no default payment method at provider account {account_id}: name one"
                )
            return method
        method = found.get(("id", chosen, invoice.customer_id))
        if method is None:
            raise _RefusedError(
                f"payment method {chosen} (the subscription's) is not an attached payment method of the customer"
            )
        if method.provider_account_id != account_id:
            raise _RefusedError(
                f"payment method {chosen} (the subscription's) is at provider account {method.provider_account_id}; "
                f"this invoice is charged through account {account_id}"
            )
        return method


def _ids(name: str, values: set[int]) -> BindParameter[Any]:
    # One array parameter, not one bind parameter per id (rendering a hundred costs more than the query).
    return bindparam(name, sorted(values), type_=ARRAY(BigInteger()))
