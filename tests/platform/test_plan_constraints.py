"""The database keeps the pricing-model rules too, whatever writes the row."""

from __future__ import annotations

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from billplane.runtime import Runtime
from tests.conftest import create_tenant

BROKEN_PLANS = {
    "ck_plans_amount_by_model": "'flat', NULL, NULL, NULL",
    "ck_plans_package_size_by_model": "'package', 100, NULL, NULL",
    "ck_plans_usage_aggregation_by_model": "'metered', 5, NULL, NULL",
}


@pytest.mark.parametrize(("constraint", "values"), BROKEN_PLANS.items())
async def test_an_inconsistent_plan_is_refused_by_the_database(
    constraint: str, values: str, client: AsyncTestClient[Litestar], admin_headers: dict[str, str], runtime: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers)

    async def insert_plan() -> None:
        async with runtime.database.tenant_session(tenant.schema) as session:
            product = await session.scalar(text("INSERT INTO products (name) VALUES ('P') RETURNING id"))
            await session.execute(
                text(
                    "INSERT INTO plans (product_id, name, currency, billing_interval, pricing_model, amount, "
                    f"package_size, usage_aggregation) VALUES (:p, 'x', 'USD', 'month', {values})"
                ),
                {"p": product},
            )

    with pytest.raises(IntegrityError, match=constraint):
        await insert_plan()
