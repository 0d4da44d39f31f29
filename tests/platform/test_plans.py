"""/v1/plans: every pricing model, the rules each one enforces, exact tier prices, the price freeze once
a subscription uses a plan, delete rules, filters and pagination."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, get_args

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.engine import make_url

from billplane.catalog.models import BILLING_INTERVALS, PRICING_MODELS, USAGE_AGGREGATIONS
from billplane.catalog.schemas import BillingInterval, PricingModel, UsageAggregation
from billplane.runtime import Runtime
from tests.conftest import CreatedTenant, create_tenant

Client = AsyncTestClient[Litestar]
Body = dict[str, Any]

FLAT: Body = {"pricing_model": "flat", "amount": 1999}
TIERS: list[Body] = [
    {"up_to": 1000, "unit_amount": 5},
    {"up_to": 10000, "unit_amount_decimal": "0.125"},
    {"up_to": None, "unit_amount_decimal": "0.1", "flat_amount": 100},
]
TIERED: Body = {"pricing_model": "tiered", "tiers": TIERS}
PACKAGE: Body = {"pricing_model": "package", "amount": 1000, "package_size": 100}
METERED: Body = {"pricing_model": "metered", "amount": 3}


async def _product(client: Client, tenant: CreatedTenant, **fields: object) -> Body:
    response = await client.post("/v1/products", json={"name": "Pro"} | fields, headers=tenant.headers)
    assert response.status_code == 201, response.text
    body: Body = response.json()
    return body


def _plan_body(product_id: object, fields: Body) -> Body:
    return {"product_id": product_id, "name": "Plan", "currency": "USD", "billing_interval": "month"} | fields


async def _create(client: Client, tenant: CreatedTenant, product_id: object, fields: Body) -> Body:
    response = await client.post("/v1/plans", json=_plan_body(product_id, fields), headers=tenant.headers)
    assert response.status_code == 201, response.text
    body: Body = response.json()
    return body


async def _setup(client: Client, admin_headers: dict[str, str]) -> tuple[CreatedTenant, Any]:
    tenant = await create_tenant(client, admin_headers)
    return tenant, (await _product(client, tenant))["id"]


def _fields(response: Any) -> list[str]:
    return [error["field"] for error in response.json()["errors"]]


async def _counts(runtime: Runtime, tenant: CreatedTenant) -> tuple[int, int, int]:
    async with runtime.database.tenant_session(tenant.schema) as session:
        row = (
            await session.execute(
                text(
                    "SELECT (SELECT count(*) FROM plans), (SELECT count(*) FROM pricing_tiers), "
                    "(SELECT count(*) FROM plan_features)"
                )
            )
        ).one()
    return row[0], row[1], row[2]


async def _subscribe(
    client: Client, runtime: Runtime, tenant: CreatedTenant, plan_id: object, status: str = "active"
) -> None:
    """A subscription row made directly: the subscriptions API is not this module's concern."""
    response = await client.post("/v1/customers", json={}, headers=tenant.headers)
    async with runtime.database.tenant_session(tenant.schema) as session:
        await session.execute(
            text("INSERT INTO subscriptions (customer_id, plan_id, status) VALUES (:c, :p, :s)"),
            {"c": response.json()["id"], "p": plan_id, "s": status},
        )


def test_the_api_literals_match_the_table_checks() -> None:
    assert get_args(PricingModel) == PRICING_MODELS
    assert get_args(BillingInterval) == BILLING_INTERVALS
    assert get_args(UsageAggregation) == USAGE_AGGREGATIONS


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param(FLAT, {"amount": 1999, "tiers": [], "package_size": None, "usage_aggregation": None}, id="flat"),
        pytest.param({"pricing_model": "per_seat", "amount": 500}, {"amount": 500, "tiers": []}, id="per_seat"),
        pytest.param(TIERED, {"amount": None, "package_size": None}, id="tiered"),
        pytest.param({"pricing_model": "volume", "tiers": TIERS}, {"amount": None}, id="volume"),
        pytest.param(PACKAGE, {"amount": 1000, "package_size": 100, "tiers": []}, id="package"),
        pytest.param(METERED, {"amount": 3, "usage_aggregation": "sum", "tiers": []}, id="metered-default-sum"),
        pytest.param(METERED | {"usage_aggregation": "max"}, {"usage_aggregation": "max"}, id="metered-max"),
        pytest.param(METERED | {"usage_aggregation": "last"}, {"usage_aggregation": "last"}, id="metered-last"),
    ],
)
async def test_each_pricing_model_is_created_and_read_back(
    fields: Body, expected: Body, client: Client, admin_headers: dict[str, str]
) -> None:
    tenant, product_id = await _setup(client, admin_headers)
    extra = {"description": "Best", "metadata": {"sku": "x"}, "features": [{"key": "seats", "limit": 5}]}
    created = await _create(client, tenant, product_id, fields | extra)
    assert {key: created[key] for key in expected} == expected
    assert created["pricing_model"] == fields["pricing_model"]
    assert (created["product_id"], created["currency"], created["billing_interval"]) == (product_id, "USD", "month")
    assert (created["interval_count"], created["active"], created["trial_period_days"]) == (1, True, None)
    assert (created["description"], created["metadata"]) == ("Best", {"sku": "x"})
    assert created["features"] == [{"key": "seats", "value": None, "limit": 5}]
    path = f"/v1/plans/{created['id']}"
    assert (await client.get(path, headers=tenant.headers)).json() == created
    listed = (await client.get("/v1/plans", headers=tenant.headers)).json()["data"]
    assert listed == [created]


async def test_tiers_round_trip_exactly(client: Client, admin_headers: dict[str, str], runtime: Runtime) -> None:
    tenant, product_id = await _setup(client, admin_headers)
    tiers = [
        {"up_to": 10, "unit_amount_decimal": "0.125"},
        {"up_to": 20, "unit_amount_decimal": "0.000000000001", "flat_amount": 0},
        {"up_to": 30, "unit_amount_decimal": "7.50"},
        {"up_to": 40, "unit_amount": 0, "flat_amount": 250},
        {"up_to": None, "unit_amount_decimal": "999999999999.999999999999"},
    ]
    created = await _create(client, tenant, product_id, {"pricing_model": "volume", "tiers": tiers})
    assert created["tiers"] == [
        {"up_to": 10, "unit_amount": None, "unit_amount_decimal": "0.125", "flat_amount": 0},
        {"up_to": 20, "unit_amount": None, "unit_amount_decimal": "0.000000000001", "flat_amount": 0},
        {"up_to": 30, "unit_amount": None, "unit_amount_decimal": "7.5", "flat_amount": 0},
        {"up_to": 40, "unit_amount": 0, "unit_amount_decimal": "0", "flat_amount": 250},
        {"up_to": None, "unit_amount": None, "unit_amount_decimal": "999999999999.999999999999", "flat_amount": 0},
    ]
    assert (await client.get(f"/v1/plans/{created['id']}", headers=tenant.headers)).json()["tiers"] == created["tiers"]
    async with runtime.database.tenant_session(tenant.schema) as session:
        stored = (
            await session.execute(text("SELECT position, unit_amount::text FROM pricing_tiers ORDER BY position"))
        ).all()
    assert [tuple(row) for row in stored] == [
        (0, "0.125000000000"),
        (1, "0.000000000001"),
        (2, "7.500000000000"),
        (3, "0.000000000000"),
        (4, "999999999999.999999999999"),
    ]


async def test_whole_decimal_unit_amount_is_also_an_integer(client: Client, admin_headers: dict[str, str]) -> None:
    tenant, product_id = await _setup(client, admin_headers)
    tiers = [{"up_to": 5, "unit_amount_decimal": "12.000"}, {"up_to": None, "unit_amount": 7}]
    created = await _create(client, tenant, product_id, {"pricing_model": "tiered", "tiers": tiers})
    assert [(tier["unit_amount"], tier["unit_amount_decimal"]) for tier in created["tiers"]] == [(12, "12"), (7, "7")]


@pytest.mark.parametrize(("sent", "stored"), [("usd", "USD"), ("Eur", "EUR"), ("JPY", "JPY"), ("kwd", "KWD")])
async def test_currency_is_an_active_iso_code_stored_upper_case(
    sent: str, stored: str, client: Client, admin_headers: dict[str, str]
) -> None:
    tenant, product_id = await _setup(client, admin_headers)
    created = await _create(client, tenant, product_id, FLAT | {"currency": sent})
    assert created["currency"] == stored


@pytest.mark.parametrize(
    ("fields", "accepted"),
    [
        ({"billing_interval": "day", "interval_count": 365}, True),
        ({"billing_interval": "week", "interval_count": 52}, True),
        ({"billing_interval": "month", "interval_count": 12}, True),
        ({"billing_interval": "year", "interval_count": 1}, True),
        ({"billing_interval": "day", "interval_count": 366}, False),
        ({"billing_interval": "week", "interval_count": 53}, False),
        ({"billing_interval": "month", "interval_count": 13}, False),
        ({"billing_interval": "year", "interval_count": 2}, False),
        ({"interval_count": 0}, False),
    ],
)
async def test_a_billing_period_is_at_most_one_year(
    fields: Body, *, accepted: bool, client: Client, admin_headers: dict[str, str]
) -> None:
    tenant, product_id = await _setup(client, admin_headers)
    response = await client.post("/v1/plans", json=_plan_body(product_id, FLAT | fields), headers=tenant.headers)
    if accepted:
        assert response.status_code == 201, response.text
        assert response.json()["interval_count"] == fields["interval_count"]
    else:
        assert response.status_code == 422, response.text
        assert _fields(response) == ["interval_count"]


async def test_limits_that_are_accepted(client: Client, admin_headers: dict[str, str]) -> None:
    tenant, product_id = await _setup(client, admin_headers)
    for days in (0, 730):
        created = await _create(client, tenant, product_id, FLAT | {"trial_period_days": days})
        assert created["trial_period_days"] == days
    fifty = [{"up_to": i + 1, "unit_amount": 50 - i} for i in range(49)] + [{"up_to": None, "unit_amount": 0}]
    created = await _create(client, tenant, product_id, {"pricing_model": "tiered", "tiers": fifty})
    assert [tier["up_to"] for tier in created["tiers"]] == [*range(1, 50), None]
    free = await _create(client, tenant, product_id, {"pricing_model": "flat", "amount": 0, "features": []})
    assert free["amount"] == 0
    features = [{"key": "k" * 64, "value": "on"}, {"key": "api", "limit": 0}]
    created = await _create(client, tenant, product_id, FLAT | {"features": features})
    assert created["features"] == [  # sorted by key
        {"key": "api", "value": None, "limit": 0},
        {"key": "k" * 64, "value": "on", "limit": None},
    ]


def _tiers(*up_tos: int | None) -> list[Body]:
    return [{"up_to": up_to, "unit_amount": 1} for up_to in up_tos]


# (name, fields sent beside product_id/name/currency/billing_interval, the one field that must be named)
INVALID: list[tuple[str, Body, str]] = [
    ("flat needs amount", {"pricing_model": "flat"}, "amount"),
    ("flat forbids tiers", FLAT | {"tiers": _tiers(None)}, "tiers"),
    ("flat forbids package_size", FLAT | {"package_size": 10}, "package_size"),
    ("flat forbids usage_aggregation", FLAT | {"usage_aggregation": "sum"}, "usage_aggregation"),
    ("per_seat needs amount", {"pricing_model": "per_seat"}, "amount"),
    ("per_seat forbids tiers", {"pricing_model": "per_seat", "amount": 1, "tiers": _tiers(None)}, "tiers"),
    ("per_seat forbids package_size", {"pricing_model": "per_seat", "amount": 1, "package_size": 2}, "package_size"),
    (
        "per_seat forbids usage_aggregation",
        {"pricing_model": "per_seat", "amount": 1, "usage_aggregation": "max"},
        "usage_aggregation",
    ),
    ("tiered needs tiers", {"pricing_model": "tiered"}, "tiers"),
    ("tiered needs at least one tier", {"pricing_model": "tiered", "tiers": []}, "tiers"),
    ("at most 50 tiers", {"pricing_model": "tiered", "tiers": _tiers(*range(1, 51), None)}, "tiers"),
    ("tiered forbids amount", TIERED | {"amount": 100}, "amount"),
    ("volume needs tiers", {"pricing_model": "volume"}, "tiers"),
    ("volume forbids amount", {"pricing_model": "volume", "tiers": TIERS, "amount": 1}, "amount"),
    ("tiered forbids package_size", TIERED | {"package_size": 5}, "package_size"),
    ("tiers ascend", {"pricing_model": "tiered", "tiers": _tiers(10, 5, None)}, "tiers[1].up_to"),
    ("tiers ascend strictly", {"pricing_model": "volume", "tiers": _tiers(10, 20, 20, None)}, "tiers[2].up_to"),
    ("only the last tier is open", {"pricing_model": "tiered", "tiers": _tiers(None, None)}, "tiers[0].up_to"),
    ("the last tier is open", {"pricing_model": "tiered", "tiers": _tiers(10, 20)}, "tiers[1].up_to"),
    ("up_to is at least 1", {"pricing_model": "tiered", "tiers": _tiers(0, None)}, "tiers[0].up_to"),
    (
        "an omitted up_to is open-ended, so only the last may omit it",
        {"pricing_model": "tiered", "tiers": [{"unit_amount": 1}, {"up_to": None, "unit_amount": 1}]},
        "tiers[0].up_to",
    ),
    (
        "a tier needs a unit price",
        {"pricing_model": "tiered", "tiers": [{"up_to": 10, "flat_amount": 5}, {"up_to": None, "unit_amount": 1}]},
        "tiers[0].unit_amount",
    ),
    (
        "a tier has one unit price",
        {"pricing_model": "tiered", "tiers": [{"up_to": None, "unit_amount": 1, "unit_amount_decimal": "1"}]},
        "tiers[0].unit_amount_decimal",
    ),
    (
        "decimal unit price is not negative",
        {"pricing_model": "tiered", "tiers": [{"up_to": None, "unit_amount_decimal": "-0.5"}]},
        "tiers[0].unit_amount_decimal",
    ),
    (
        "decimal unit price has at most 12 places",
        {"pricing_model": "tiered", "tiers": [{"up_to": None, "unit_amount_decimal": "0.0000000000001"}]},
        "tiers[0].unit_amount_decimal",
    ),
    (
        "decimal unit price has no exponent",
        {"pricing_model": "tiered", "tiers": [{"up_to": None, "unit_amount_decimal": "1e3"}]},
        "tiers[0].unit_amount_decimal",
    ),
    (
        "decimal unit price is a string, not a JSON float",
        {"pricing_model": "tiered", "tiers": [{"up_to": None, "unit_amount_decimal": 0.25}]},
        "tiers[0].unit_amount_decimal",
    ),
    (
        "integer unit price is not a float",
        {"pricing_model": "tiered", "tiers": [{"up_to": None, "unit_amount": 2.0}]},
        "tiers[0].unit_amount",
    ),
    (
        "unit price is not negative",
        {"pricing_model": "tiered", "tiers": [{"up_to": None, "unit_amount": -1}]},
        "tiers[0].unit_amount",
    ),
    (
        "flat amount of a tier is not negative",
        {"pricing_model": "tiered", "tiers": [{"up_to": None, "unit_amount": 1, "flat_amount": -5}]},
        "tiers[0].flat_amount",
    ),
    ("package needs amount", {"pricing_model": "package", "package_size": 10}, "amount"),
    ("package needs package_size", {"pricing_model": "package", "amount": 10}, "package_size"),
    ("package_size is at least 1", PACKAGE | {"package_size": 0}, "package_size"),
    ("package forbids tiers", PACKAGE | {"tiers": _tiers(None)}, "tiers"),
    ("package forbids usage_aggregation", PACKAGE | {"usage_aggregation": "sum"}, "usage_aggregation"),
    ("metered needs amount", {"pricing_model": "metered"}, "amount"),
    ("metered forbids tiers", METERED | {"tiers": _tiers(None)}, "tiers"),
    ("metered forbids package_size", METERED | {"package_size": 10}, "package_size"),
    ("metered aggregation is sum, max or last", METERED | {"usage_aggregation": "avg"}, "usage_aggregation"),
    ("amount is not negative", FLAT | {"amount": -1}, "amount"),
    ("amount is not a JSON float", FLAT | {"amount": 1999.0}, "amount"),
    ("amount has no fraction", FLAT | {"amount": 19.99}, "amount"),
    ("amount has a bound", FLAT | {"amount": 10**12}, "amount"),
    ("pricing model is known", {"pricing_model": "freemium", "amount": 1}, "pricing_model"),
    ("pricing model is required", {"amount": 1}, "pricing_model"),
    ("currency is ISO 4217", FLAT | {"currency": "ZZZ"}, "currency"),
    ("currency is an active one", FLAT | {"currency": "XAU"}, "currency"),
    ("currency has three letters", FLAT | {"currency": "US"}, "currency"),
    ("billing interval is known", FLAT | {"billing_interval": "fortnight"}, "billing_interval"),
    ("trial is not negative", FLAT | {"trial_period_days": -1}, "trial_period_days"),
    ("trial is at most 730 days", FLAT | {"trial_period_days": 731}, "trial_period_days"),
    ("product must exist", FLAT | {"product_id": 999_999}, "product_id"),
    ("product id is a bigint", FLAT | {"product_id": 2**64}, "product_id"),
    ("feature keys are unique", FLAT | {"features": [{"key": "a"}, {"key": "b"}, {"key": "a"}]}, "features[2].key"),
    ("feature key is not empty", FLAT | {"features": [{"key": ""}]}, "features[0].key"),
    ("feature key has at most 64 characters", FLAT | {"features": [{"key": "k" * 65}]}, "features[0].key"),
    ("feature limit is an integer", FLAT | {"features": [{"key": "a", "limit": 1.5}]}, "features[0].limit"),
    ("unknown fields are refused", FLAT | {"surprise": 1}, "surprise"),
    ("name is not empty", FLAT | {"name": ""}, "name"),
]


@pytest.mark.parametrize(("fields", "field"), [pytest.param(body, field, id=name) for name, body, field in INVALID])
async def test_invalid_plan_names_the_field_and_writes_nothing(
    fields: Body, field: str, client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    tenant, product_id = await _setup(client, admin_headers)
    response = await client.post("/v1/plans", json=_plan_body(product_id, fields), headers=tenant.headers)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"
    assert _fields(response) == [field], response.text
    assert await _counts(runtime, tenant) == (0, 0, 0)
    assert (await client.get("/v1/plans", headers=tenant.headers)).json()["data"] == []


async def test_every_field_at_fault_is_named_at_once(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    tenant, _ = await _setup(client, admin_headers)
    body = {
        "product_id": 424242,
        "name": "Bad",
        "pricing_model": "tiered",
        "amount": 100,
        "currency": "ABC",
        "billing_interval": "month",
        "interval_count": 24,
        "tiers": [{"up_to": 100, "unit_amount": 1}, {"up_to": 50}, {"up_to": None, "unit_amount": 1}],
        "features": [{"key": "x"}, {"key": "x"}],
    }
    response = await client.post("/v1/plans", json=body, headers=tenant.headers)
    assert response.status_code == 422
    assert sorted(_fields(response)) == sorted(
        [
            "product_id",
            "amount",
            "tiers[1].up_to",
            "tiers[1].unit_amount",
            "currency",
            "interval_count",
            "features[1].key",
        ]
    )
    assert response.json()["detail"].startswith("invalid fields: ")
    assert await _counts(runtime, tenant) == (0, 0, 0)


async def test_plans_need_an_active_product_of_this_tenant(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    mine, theirs = await create_tenant(client, admin_headers), await create_tenant(client, admin_headers)
    await _product(client, theirs)
    foreign = await _product(client, theirs)  # id 2: mine has no product 2
    crossed = await client.post("/v1/plans", json=_plan_body(foreign["id"], FLAT), headers=mine.headers)
    assert crossed.status_code == 422
    assert crossed.json()["errors"] == [{"field": "product_id", "source": "body", "message": "no such product"}]
    product = await _product(client, mine, active=False)
    archived = await client.post("/v1/plans", json=_plan_body(product["id"], FLAT), headers=mine.headers)
    assert archived.status_code == 422
    assert _fields(archived) == ["product_id"]
    assert "archived" in archived.json()["errors"][0]["message"]
    assert await _counts(runtime, mine) == (0, 0, 0)
    await client.patch(f"/v1/products/{product['id']}", json={"active": True}, headers=mine.headers)
    await _create(client, mine, product["id"], FLAT)


async def test_archiving_a_product_keeps_its_plans(client: Client, admin_headers: dict[str, str]) -> None:
    tenant, product_id = await _setup(client, admin_headers)
    plan = await _create(client, tenant, product_id, FLAT)
    await client.patch(f"/v1/products/{product_id}", json={"active": False}, headers=tenant.headers)
    assert (await client.get(f"/v1/plans/{plan['id']}", headers=tenant.headers)).json() == plan


async def test_update_descriptive_fields(client: Client, admin_headers: dict[str, str]) -> None:
    tenant, product_id = await _setup(client, admin_headers)
    plan = await _create(client, tenant, product_id, TIERED | {"description": "old", "metadata": {"a": "1"}})
    path = f"/v1/plans/{plan['id']}"
    changes = {"name": "Renamed", "description": None, "active": False, "metadata": {"b": "2"}}
    patched = await client.patch(path, json=changes, headers=tenant.headers)
    assert patched.status_code == 200, patched.text
    assert {key: patched.json()[key] for key in changes} == changes
    assert patched.json()["tiers"] == plan["tiers"]
    assert (await client.get(path, headers=tenant.headers)).json() == patched.json()


async def test_price_changes_while_unused_are_checked_in_full(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    tenant, product_id = await _setup(client, admin_headers)
    plan = await _create(client, tenant, product_id, FLAT | {"interval_count": 2})
    path = f"/v1/plans/{plan['id']}"

    async def patch(body: Body) -> Any:
        return await client.patch(path, json=body, headers=tenant.headers)

    changed = await patch({"amount": 2500, "currency": "eur", "billing_interval": "week"})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["amount"], changed.json()["currency"], changed.json()["billing_interval"]) == (
        2500,
        "EUR",
        "week",
    )
    # The whole price is checked, not only the fields sent: two years is too long.
    too_long = await patch({"billing_interval": "year"})
    assert (too_long.status_code, _fields(too_long)) == (422, ["interval_count"])
    # Changing the model: fields the new model does not take must be cleared explicitly.
    still_has_amount = await patch({"pricing_model": "tiered", "tiers": TIERS})
    assert (still_has_amount.status_code, _fields(still_has_amount)) == (422, ["amount"])
    tiered = await patch({"pricing_model": "tiered", "tiers": TIERS, "amount": None})
    assert tiered.status_code == 200, tiered.text
    assert [tier["unit_amount_decimal"] for tier in tiered.json()["tiers"]] == ["5", "0.125", "0.1"]
    assert await _counts(runtime, tenant) == (1, 3, 0)
    bad_tiers = await patch({"tiers": _tiers(5, 5, None)})
    assert (bad_tiers.status_code, _fields(bad_tiers)) == (422, ["tiers[1].up_to"])
    retiered = await patch({"tiers": [{"up_to": None, "unit_amount_decimal": "0.5"}]})
    assert retiered.status_code == 200, retiered.text
    assert retiered.json()["tiers"] == [
        {"up_to": None, "unit_amount": None, "unit_amount_decimal": "0.5", "flat_amount": 0}
    ]
    async with runtime.database.tenant_session(tenant.schema) as session:
        positions = (await session.execute(text("SELECT position FROM pricing_tiers"))).scalars().all()
    assert list(positions) == [0]
    keeps_tiers = await patch({"pricing_model": "flat", "amount": 100})
    assert (keeps_tiers.status_code, _fields(keeps_tiers)) == (422, ["tiers"])
    metered = await patch({"pricing_model": "metered", "amount": 2, "tiers": None})
    assert metered.status_code == 200, metered.text
    assert (metered.json()["usage_aggregation"], metered.json()["tiers"]) == ("sum", [])
    assert await _counts(runtime, tenant) == (1, 0, 0)
    package = await patch({"pricing_model": "package", "package_size": 10, "usage_aggregation": None})
    assert package.status_code == 200, package.text
    assert (package.json()["package_size"], package.json()["usage_aggregation"]) == (10, None)
    before = (await client.get(path, headers=tenant.headers)).json()
    for body, field in (
        ({"currency": "QQQ"}, "currency"),
        ({"package_size": None}, "package_size"),
        ({"amount": 1.5}, "amount"),
        ({"interval_count": 0}, "interval_count"),
        ({"product_id": 1}, "product_id"),
        ({"features": []}, "features"),
        ({"trial_period_days": 3}, "trial_period_days"),
        ({"name": None}, "name"),
        ({"name": "refused with the rest", "pricing_model": None}, "pricing_model"),
    ):
        response = await patch(body)
        assert (response.status_code, _fields(response)) == (422, [field]), (body, response.text)
    assert (await client.get(path, headers=tenant.headers)).json() == before


async def test_the_price_of_a_plan_in_use_is_frozen(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    tenant, product_id = await _setup(client, admin_headers)
    flat = await _create(client, tenant, product_id, FLAT)
    tiered = await _create(client, tenant, product_id, TIERED)
    package = await _create(client, tenant, product_id, PACKAGE)
    metered = await _create(client, tenant, product_id, METERED)
    await _subscribe(client, runtime, tenant, flat["id"])
    await _subscribe(client, runtime, tenant, tiered["id"], status="trialing")
    await _subscribe(client, runtime, tenant, package["id"], status="past_due")
    await _subscribe(client, runtime, tenant, metered["id"], status="canceled")  # any subscription counts
    refused = [
        (flat, {"amount": 2000}),
        (flat, {"currency": "EUR"}),
        (flat, {"billing_interval": "year"}),
        (flat, {"interval_count": 3}),
        (flat, {"pricing_model": "per_seat"}),
        (tiered, {"tiers": [{"up_to": None, "unit_amount": 1}]}),
        (tiered, {"pricing_model": "volume"}),
        (package, {"package_size": 50}),
        (metered, {"usage_aggregation": "max"}),
        (metered, {"amount": 4, "name": "also not renamed"}),
    ]
    for plan, body in refused:
        path = f"/v1/plans/{plan['id']}"
        response = await client.patch(path, json=body, headers=tenant.headers)
        assert response.status_code == 409, (body, response.text)
        assert response.json()["detail"] == "the plan is in use; create a new plan instead"
        assert (await client.get(path, headers=tenant.headers)).json() == plan
    # What does not change the price is allowed: descriptive fields, and the price it already has.
    unchanged = [
        (flat, {"amount": 1999, "currency": "usd", "billing_interval": "month", "interval_count": 1}),
        (tiered, {"tiers": TIERS, "pricing_model": "tiered"}),
        (tiered, {"tiers": [{"up_to": 1000, "unit_amount_decimal": "5.0"}, *TIERS[1:]]}),
        (metered, {"usage_aggregation": "sum"}),
        (package, {"name": "Bulk", "description": "d", "active": False, "metadata": {"m": "1"}}),
    ]
    for plan, body in unchanged:
        path = f"/v1/plans/{plan['id']}"
        response = await client.patch(path, json=body, headers=tenant.headers)
        assert response.status_code == 200, (body, response.text)
        assert response.json()["tiers"] == plan["tiers"]
        assert (response.json()["amount"], response.json()["currency"]) == (plan["amount"], plan["currency"])
    assert (await client.get(f"/v1/plans/{package['id']}", headers=tenant.headers)).json()["name"] == "Bulk"
    assert await _counts(runtime, tenant) == (4, 3, 0)


async def test_a_plan_a_subscription_moves_to_at_period_end_is_in_use(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    """A change scheduled for the period's end (``pending_plan_id``) bills the plan from then on: its
    price is frozen and it cannot be deleted (409, not the foreign key's 500)."""
    tenant, product_id = await _setup(client, admin_headers)
    current = await _create(client, tenant, product_id, FLAT)
    upgrade = await _create(client, tenant, product_id, FLAT | {"amount": 2999})
    customer = (await client.post("/v1/customers", json={}, headers=tenant.headers)).json()
    columns = "customer_id, plan_id, pending_plan_id, status"
    scheduled = f"INSERT INTO subscriptions ({columns}) VALUES (:c, :p, :n, 'active')"
    async with runtime.database.tenant_session(tenant.schema) as session:
        await session.execute(text(scheduled), {"c": customer["id"], "p": current["id"], "n": upgrade["id"]})
    path = f"/v1/plans/{upgrade['id']}"

    repriced = await client.patch(path, json={"currency": "EUR"}, headers=tenant.headers)
    deleted = await client.delete(path, headers=tenant.headers)

    assert repriced.status_code == 409, repriced.text
    assert repriced.json()["detail"] == "the plan is in use; create a new plan instead"
    assert deleted.status_code == 409, deleted.text
    assert "archive" in deleted.json()["detail"]
    assert (await client.get(path, headers=tenant.headers)).json() == upgrade


async def test_a_plan_a_period_was_billed_at_is_in_use(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    """After a change made without proration, the period is still the one billed at the old plan
    (``billed_plan_id``): a later prorated change credits its unused time at that plan's price,
    which must be the price that was paid."""
    tenant, product_id = await _setup(client, admin_headers)
    billed = await _create(client, tenant, product_id, FLAT)
    other = await _create(client, tenant, product_id, FLAT | {"amount": 2999})
    customer = (await client.post("/v1/customers", json={}, headers=tenant.headers)).json()
    columns = "customer_id, plan_id, billed_plan_id, status"
    changed = f"INSERT INTO subscriptions ({columns}) VALUES (:c, :p, :b, 'active')"
    async with runtime.database.tenant_session(tenant.schema) as session:
        await session.execute(text(changed), {"c": customer["id"], "p": other["id"], "b": billed["id"]})

    repriced = await client.patch(f"/v1/plans/{billed['id']}", json={"amount": 100000}, headers=tenant.headers)
    assert repriced.status_code == 409, repriced.text
    assert repriced.json()["detail"] == "the plan is in use; create a new plan instead"


def _subscribe_slowly(dsn: str, schema: str, customer_id: int, plan_id: int, inserted: threading.Event) -> None:
    """In its own thread and connection: insert a subscription, then wait a second before committing."""

    async def run() -> None:
        connection = await asyncpg.connect(dsn)
        try:
            async with connection.transaction():
                await connection.execute(
                    f'INSERT INTO "{schema}".subscriptions (customer_id, plan_id, status) VALUES ($1, $2, $3)',
                    customer_id,
                    plan_id,
                    "incomplete",
                )
                inserted.set()
                await asyncio.sleep(1.0)
        finally:
            await connection.close()

    asyncio.run(run())


@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
async def test_a_subscription_being_made_is_waited_for(
    method: str, client: Client, admin_headers: dict[str, str], database_url: str
) -> None:
    """The plan row is locked before the check, so a subscription committed meanwhile is seen, not missed."""
    tenant, product_id = await _setup(client, admin_headers)
    plan = await _create(client, tenant, product_id, FLAT)
    customer = (await client.post("/v1/customers", json={}, headers=tenant.headers)).json()
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    inserted = threading.Event()
    holder = asyncio.create_task(
        asyncio.to_thread(_subscribe_slowly, dsn, tenant.schema, customer["id"], plan["id"], inserted)
    )
    assert await asyncio.to_thread(inserted.wait, 30)
    path = f"/v1/plans/{plan['id']}"
    # Sent while the subscription is not yet committed (the test client blocks this loop until it answers).
    started = time.monotonic()
    response = await client.request(
        method, path, json={"amount": 1} if method == "PATCH" else None, headers=tenant.headers
    )
    waited = time.monotonic() - started
    await holder
    assert response.status_code == 409, response.text
    assert waited > 0.2  # it waited for the subscription's transaction
    assert (await client.get(path, headers=tenant.headers)).json() == plan


async def test_delete_rules(client: Client, admin_headers: dict[str, str], runtime: Runtime) -> None:
    tenant, product_id = await _setup(client, admin_headers)
    features = [{"key": "a"}, {"key": "b", "limit": 3}]
    unused = await _create(client, tenant, product_id, TIERED | {"features": features})
    subscribed = await _create(client, tenant, product_id, FLAT)
    invoiced = await _create(client, tenant, product_id, FLAT)
    await _subscribe(client, runtime, tenant, subscribed["id"], status="canceled")
    customer = (await client.post("/v1/customers", json={}, headers=tenant.headers)).json()
    async with runtime.database.tenant_session(tenant.schema) as session:
        invoice = await session.scalar(
            text("INSERT INTO invoices (customer_id, currency) VALUES (:c, 'USD') RETURNING id"), {"c": customer["id"]}
        )
        await session.execute(
            text(
                "INSERT INTO invoice_lines (invoice_id, plan_id, description, quantity, unit_amount, amount, currency) "
                "VALUES (:i, :p, 'one-off', 1, 1999, 1999, 'USD')"
            ),
            {"i": invoice, "p": invoiced["id"]},
        )
    assert await _counts(runtime, tenant) == (3, 3, 2)
    for plan in (subscribed, invoiced):
        path = f"/v1/plans/{plan['id']}"
        response = await client.delete(path, headers=tenant.headers)
        assert response.status_code == 409, response.text
        assert "archive" in response.json()["detail"]
        assert (await client.get(path, headers=tenant.headers)).json() == plan
    path = f"/v1/plans/{unused['id']}"
    assert (await client.delete(path, headers=tenant.headers)).status_code == 204
    assert (await client.get(path, headers=tenant.headers)).status_code == 404
    assert (await client.delete(path, headers=tenant.headers)).status_code == 404
    assert await _counts(runtime, tenant) == (2, 0, 0)  # its tiers and features went with it


async def test_filters_and_pages(client: Client, admin_headers: dict[str, str]) -> None:
    tenant, first = await _setup(client, admin_headers)
    second = (await _product(client, tenant, name="Other"))["id"]
    plans = [await _create(client, tenant, product, FLAT) for product in (first, second, first, second, first)]
    await client.patch(f"/v1/plans/{plans[2]['id']}", json={"active": False}, headers=tenant.headers)
    await client.patch(f"/v1/plans/{plans[3]['id']}", json={"active": False}, headers=tenant.headers)
    ids = [plan["id"] for plan in plans]

    async def listed(**params: str) -> list[object]:
        response = await client.get("/v1/plans", params=params, headers=tenant.headers)
        assert response.status_code == 200, response.text
        return [row["id"] for row in response.json()["data"]]

    assert await listed() == ids
    assert await listed(product_id=str(first)) == [ids[0], ids[2], ids[4]]
    assert await listed(product_id=str(second)) == [ids[1], ids[3]]
    assert await listed(active="false") == [ids[2], ids[3]]
    assert await listed(active="true", product_id=str(first)) == [ids[0], ids[4]]
    assert await listed(product_id="999999") == []

    seen: list[object] = []
    cursor: str | None = None
    while True:
        params = {"limit": "2", "product_id": str(first)} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/v1/plans", params=params, headers=tenant.headers)).json()
        assert len(page["data"]) <= 2
        seen += [row["id"] for row in page["data"]]
        if len(seen) == 2:  # a plan added between pages appears once, at the end
            ids.append((await _create(client, tenant, first, FLAT))["id"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [ids[0], ids[2], ids[4], ids[5]]
    bad = await client.get("/v1/plans", params={"product_id": "0"}, headers=tenant.headers)
    assert (bad.status_code, _fields(bad)) == (422, ["product_id"])


async def test_ids_of_another_tenant_are_404_like_unknown_ids(client: Client, admin_headers: dict[str, str]) -> None:
    mine, theirs = await create_tenant(client, admin_headers), await create_tenant(client, admin_headers)
    await _create(client, mine, (await _product(client, mine))["id"], FLAT)
    their_product = (await _product(client, theirs))["id"]
    await _create(client, theirs, their_product, FLAT)
    foreign = await _create(client, theirs, their_product, FLAT | {"name": theirs.slug})  # id 2: mine has plan 1
    path = f"/v1/plans/{foreign['id']}"
    unknown = await client.get("/v1/plans/999999", headers=mine.headers)
    crossed = await client.get(path, headers=mine.headers)
    assert crossed.status_code == unknown.status_code == 404
    assert crossed.json().keys() == unknown.json().keys()
    assert theirs.slug not in crossed.text
    assert (await client.patch(path, json={"name": "x"}, headers=mine.headers)).status_code == 404
    assert (await client.patch(path, json={"amount": 1}, headers=mine.headers)).status_code == 404
    assert (await client.delete(path, headers=mine.headers)).status_code == 404
    assert (await client.get(path, headers=theirs.headers)).json() == foreign
    listed = await client.get("/v1/plans", headers=mine.headers)
    assert len(listed.json()["data"]) == 1
    assert theirs.slug not in listed.text
    assert (await client.get(f"/v1/plans/{2**64}", headers=mine.headers)).status_code == 404
