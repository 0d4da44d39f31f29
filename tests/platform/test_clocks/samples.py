"""Samples of the test clock routes for the shared route tests (isolation, Idempotency-Key)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from tests.conftest import CreatedTenant
from tests.platform.dunning.helpers import Client

Sample = Callable[[Client, CreatedTenant], Awaitable[tuple[str, dict[str, Any]]]]


async def their_clock(client: Client, theirs: CreatedTenant) -> str:
    response = await client.post(
        "/v1/test-clocks", json={"name": theirs.slug, "frozen_time": "2030-01-01T00:00:00Z"}, headers=theirs.headers
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _new_clock(_client: Client, _tenant: CreatedTenant) -> tuple[str, dict[str, Any]]:
    return "/v1/test-clocks", {"name": "Idem", "frozen_time": "2030-01-01T00:00:00Z"}


async def _attach(client: Client, tenant: CreatedTenant) -> tuple[str, dict[str, Any]]:
    customer = await client.post("/v1/customers", json={"name": "Idem"}, headers=tenant.headers)
    return f"/v1/test-clocks/{await their_clock(client, tenant)}/customers", {"customer_id": customer.json()["id"]}


async def _advance(client: Client, tenant: CreatedTenant) -> tuple[str, dict[str, Any]]:
    return f"/v1/test-clocks/{await their_clock(client, tenant)}/advance", {"to": "2030-02-01T00:00:00Z"}


CLOCK_SAMPLES: dict[str, Sample] = {
    "/v1/test-clocks": _new_clock,
    "/v1/test-clocks/{clock_id:int}/customers": _attach,
    "/v1/test-clocks/{clock_id:int}/advance": _advance,
}
