"""All SQL for a customer's provider ids: the provider_customers rows and their copy on customers.

Every change to provider_customers goes through here, so ``customers.provider_ids`` always equals
the rows (same transaction, the customer's row updated last).
"""

from __future__ import annotations

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import JSONB, aggregate_order_by, insert
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.customers.models import Customer, ProviderCustomer

_ENTRY = func.jsonb_build_object(
    "provider",
    ProviderCustomer.provider,
    "provider_account_id",
    ProviderCustomer.provider_account_id,
    "provider_customer_id",
    ProviderCustomer.provider_customer_id,
)

_IN_ACCOUNT_ORDER = aggregate_order_by(_ENTRY, ProviderCustomer.provider_account_id)


async def record(session: AsyncSession, customer_id: int, provider: str, account_id: int, provider_id: str) -> None:
    """The customer is ``provider_id`` at that account (kept if it was already recorded)."""
    values = {
        "customer_id": customer_id,
        "provider": provider,
        "provider_account_id": account_id,
        "provider_customer_id": provider_id,
    }
    statement = insert(ProviderCustomer).values(values)
    await session.execute(statement.on_conflict_do_nothing(index_elements=["customer_id", "provider_account_id"]))
    await refresh(session, customer_id)


async def forget(session: AsyncSession, account_id: int, provider_id: str) -> None:
    """The provider no longer has this customer (it said so)."""
    statement = (
        delete(ProviderCustomer)
        .where(ProviderCustomer.provider_account_id == account_id, ProviderCustomer.provider_customer_id == provider_id)
        .returning(ProviderCustomer.customer_id)
    )
    for customer_id in (await session.execute(statement)).scalars().all():
        await refresh(session, customer_id)


async def refresh(session: AsyncSession, customer_id: int) -> None:
    ids = (
        select(func.coalesce(func.jsonb_agg(_IN_ACCOUNT_ORDER), text("'[]'::jsonb")))
        .where(ProviderCustomer.customer_id == customer_id)
        .scalar_subquery()
    )
    statement = update(Customer).where(Customer.id == customer_id).values(provider_ids=ids.cast(JSONB))
    await session.execute(statement.execution_options(synchronize_session=False))
