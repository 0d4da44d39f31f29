"""GET/PATCH /v1/billing-settings: defaults, changes with their event, and every refusal writing nothing."""

from __future__ import annotations

from typing import Any

import pytest

from billplane.runtime import Runtime
from tests.conftest import create_tenant
from tests.platform.dunning.helpers import Client, types
from tests.platform.invoices.helpers import rows

URL = "/v1/billing-settings"


async def test_a_new_tenant_has_the_default_schedule(client: Client, admin_headers: dict[str, str]) -> None:
    tenant = await create_tenant(client, admin_headers, "set")
    response = await client.get(URL, headers=tenant.headers)
    assert response.status_code == 200, response.text
    assert (response.json()["dunning_retry_days"], response.json()["dunning_final_action"]) == ([3, 5, 7], "cancel")


async def test_the_defaults_shown_equal_the_schema_defaults(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers, "set")
    shown = (await client.get(URL, headers=tenant.headers)).json()
    async with runtime.database.tenant_session(tenant.schema) as session:
        from sqlalchemy import text  # noqa: PLC0415

        await session.execute(text("INSERT INTO billing_settings DEFAULT VALUES"))
    [row] = await rows(runtime, tenant, "SELECT dunning_retry_days, dunning_final_action FROM billing_settings")
    assert [row["dunning_retry_days"], row["dunning_final_action"]] == [
        shown["dunning_retry_days"],
        shown["dunning_final_action"],
    ]


async def test_patch_changes_the_fields_sent_and_records_an_event(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers, "set")
    first = await client.patch(URL, json={"dunning_retry_days": [1, 2, 10, 60]}, headers=tenant.headers)
    second = await client.patch(URL, json={"dunning_final_action": "mark_unpaid"}, headers=tenant.headers)
    assert first.status_code == second.status_code == 200, second.text
    shown = (await client.get(URL, headers=tenant.headers)).json()
    assert (shown["dunning_retry_days"], shown["dunning_final_action"]) == ([1, 2, 10, 60], "mark_unpaid")
    assert await types(runtime, tenant, "billing_settings") == ["billing_settings.updated"] * 2
    # The values it has already: nothing changed, no event.
    same = await client.patch(URL, json={"dunning_final_action": "mark_unpaid"}, headers=tenant.headers)
    assert same.status_code == 200, same.text
    assert await types(runtime, tenant, "billing_settings") == ["billing_settings.updated"] * 2


async def test_an_empty_schedule_is_accepted(client: Client, admin_headers: dict[str, str]) -> None:
    tenant = await create_tenant(client, admin_headers, "set")
    response = await client.patch(URL, json={"dunning_retry_days": []}, headers=tenant.headers)
    assert response.status_code == 200, response.text
    assert response.json()["dunning_retry_days"] == []


REFUSED: dict[str, tuple[dict[str, Any], str]] = {
    "not ascending": ({"dunning_retry_days": [3, 2]}, "dunning_retry_days"),
    "repeated day": ({"dunning_retry_days": [3, 3]}, "dunning_retry_days"),
    "zero days": ({"dunning_retry_days": [0, 3]}, "dunning_retry_days"),
    "negative": ({"dunning_retry_days": [-1]}, "dunning_retry_days"),
    "over 60 days": ({"dunning_retry_days": [3, 61]}, "dunning_retry_days"),
    "eleven retries": ({"dunning_retry_days": list(range(1, 12))}, "dunning_retry_days"),
    "not a list": ({"dunning_retry_days": 3}, "dunning_retry_days"),
    "unknown action": ({"dunning_final_action": "void"}, "dunning_final_action"),
    "unknown field": ({"dunning_retry_count": 3}, "dunning_retry_count"),
}


@pytest.mark.parametrize("case", REFUSED)
async def test_bad_values_are_refused_with_their_field_and_nothing_changes(
    case: str, client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    body, field = REFUSED[case]
    tenant = await create_tenant(client, admin_headers, "set")
    # A valid field beside the bad one: it is not written either.
    valid = {"dunning_final_action": "mark_unpaid"} if field != "dunning_final_action" else {}
    response = await client.patch(URL, json=valid | body, headers=tenant.headers)
    assert response.status_code == 422, response.text
    assert [error["field"] for error in response.json()["errors"]] == [field]
    assert await rows(runtime, tenant, "SELECT * FROM billing_settings") == []
    assert await types(runtime, tenant, "billing_settings") == []


async def test_ten_retries_up_to_sixty_days_are_the_limit(client: Client, admin_headers: dict[str, str]) -> None:
    tenant = await create_tenant(client, admin_headers, "set")
    days = [*range(1, 10), 60]
    response = await client.patch(URL, json={"dunning_retry_days": days}, headers=tenant.headers)
    assert response.status_code == 200, response.text
    assert response.json()["dunning_retry_days"] == days
