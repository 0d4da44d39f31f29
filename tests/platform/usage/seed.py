"""A tenant with metered subscriptions in every state ingestion tells apart (rows written with SQL)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from litestar import Litestar
from litestar.testing import AsyncTestClient

from billplane.runtime import Runtime
from tests.conftest import CreatedTenant, create_tenant
from tests.platform.billing_seed import insert

Client = AsyncTestClient[Litestar]
NOW = datetime.now(UTC).replace(microsecond=0)
START, END = NOW - timedelta(days=10), NOW + timedelta(days=20)


@dataclass(frozen=True)
class Metered:
    tenant: CreatedTenant
    customer: int
    plans: dict[str, int]  # sum, max, last, flat
    subscriptions: dict[str, int]  # sum, max, last, flat, canceled, ended, unstarted


def stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def record(subscription: int, event: str, quantity: int = 1, at: datetime = NOW) -> dict[str, object]:
    return {"subscription_id": subscription, "quantity": quantity, "timestamp": stamp(at), "client_event_id": event}


async def metered_tenant(client: Client, admin_headers: dict[str, str], runtime: Runtime) -> Metered:
    tenant = await create_tenant(client, admin_headers, "usage")
    async with runtime.database.tenant_session(tenant.schema) as s:
        customer = await insert(s, "customers", name="Ada")
        product = await insert(s, "products", name="API")
        common = {"product_id": product, "currency": "USD", "billing_interval": "month"}
        plans = {
            aggregation: await insert(
                s, "plans", name=aggregation, pricing_model="metered", amount=2, usage_aggregation=aggregation, **common
            )
            for aggregation in ("sum", "max", "last")
        }
        plans["flat"] = await insert(s, "plans", name="flat", pricing_model="flat", amount=1000, **common)
        period = {"current_period_start": START, "current_period_end": END}
        subscribed = {
            "sum": (plans["sum"], "active", period),
            "max": (plans["max"], "active", period),
            "last": (plans["last"], "past_due", period),
            "flat": (plans["flat"], "active", period),
            "canceled": (plans["sum"], "canceled", period),
            "ended": (plans["sum"], "active", period | {"ended_at": NOW}),
            "unstarted": (plans["sum"], "incomplete", {}),
        }
        subscriptions = {
            name: await insert(s, "subscriptions", customer_id=customer, plan_id=plan, status=status, **extra)
            for name, (plan, status, extra) in subscribed.items()
        }
    return Metered(tenant, customer, plans, subscriptions)


async def clocked_subscription(runtime: Runtime, seed: Metered, frozen_time: datetime) -> tuple[int, int]:
    """A new test clock frozen at ``frozen_time`` and a subscription to the ``sum`` plan of a new
    customer on it, five days into its period: (clock, subscription)."""
    async with runtime.database.tenant_session(seed.tenant.schema) as session:
        clock = await insert(session, "test_clocks", frozen_time=frozen_time)
        customer = await insert(session, "customers", name="Clocked", test_clock_id=clock)
        subscription = await insert(
            session, "subscriptions", customer_id=customer, plan_id=seed.plans["sum"], status="active",
            current_period_start=frozen_time - timedelta(days=5),
            current_period_end=frozen_time + timedelta(days=25),
        )  # fmt: skip
    return clock, subscription
