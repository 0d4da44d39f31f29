"""Where a tenant's products and plans are at its provider accounts: ``provider_plans``, written
when a subscription first needs a plan at an account (``operations.provider_price``)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.catalog.models import Plan
from billplane.sync.models import ProviderPlan


async def product_accounts(session: AsyncSession, product_id: int) -> list[tuple[int, str]]:
    """(account id, provider) of every account that has a plan of the product, so the product too."""
    query = (
        select(ProviderPlan.provider_account_id, ProviderPlan.provider)
        .join(Plan, Plan.id == ProviderPlan.plan_id)
        .where(Plan.product_id == product_id)
        .distinct()
        .order_by(ProviderPlan.provider_account_id)
    )
    return [(int(account), str(provider)) for account, provider in await session.execute(query)]


async def plan_accounts(session: AsyncSession, plan_id: int) -> list[tuple[int, str]]:
    """(account id, provider) of every account that has the plan's price."""
    query = (
        select(ProviderPlan.provider_account_id, ProviderPlan.provider)
        .where(ProviderPlan.plan_id == plan_id)
        .order_by(ProviderPlan.provider_account_id)
    )
    return [(int(account), str(provider)) for account, provider in await session.execute(query)]


async def provider_products(session: AsyncSession, product_id: int, account_id: int) -> list[str]:
    """The product's ids at the account: one, unless two plans of it were first mirrored there at
    the same moment (each create then made its own product, and both stay in use)."""
    query = (
        select(ProviderPlan.provider_product_id)
        .join(Plan, Plan.id == ProviderPlan.plan_id)
        .where(Plan.product_id == product_id, ProviderPlan.provider_account_id == account_id)
        .distinct()
        .order_by(ProviderPlan.provider_product_id)
    )
    return list((await session.execute(query)).scalars())


async def price_at(session: AsyncSession, plan_id: int, account_id: int) -> str | None:
    query = select(ProviderPlan.provider_price_id).where(
        ProviderPlan.plan_id == plan_id, ProviderPlan.provider_account_id == account_id
    )
    return (await session.execute(query)).scalar_one_or_none()
