"""Gapless per-tenant invoice numbers: concurrent finalizes take distinct consecutive numbers, and a
finalize that rolls back gives its number back."""

from __future__ import annotations

import asyncio

import pytest

from billplane.invoices.repository import InvoiceRepository
from billplane.runtime import Runtime
from tests.conftest import create_tenant
from tests.platform.concurrently import in_thread
from tests.platform.invoices.helpers import Client, act, customer, draft, rows

CONCURRENT = 16


class RolledBackError(Exception):
    pass


async def take_and_roll_back(runtime: Runtime, schema: str, taken: list[int]) -> None:
    """Take a number in a finalizing transaction that then fails (and so rolls back)."""
    async with runtime.database.tenant_session(schema) as session:
        taken.append(await InvoiceRepository(session=session).take_number())
        raise RolledBackError


async def test_concurrent_finalizes_leave_no_gap_and_no_duplicate(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    tenant, other = await create_tenant(client, admin_headers, "num"), await create_tenant(client, admin_headers, "num")
    ada = await customer(client, tenant)
    invoices = [(await draft(client, tenant, ada, 100 + index))["id"] for index in range(CONCURRENT)]
    # Each in a thread of its own: on the test's loop they would run one after the other. The
    # same invoice twice at once: one number, one 409.
    finalizing = [in_thread(act(client, tenant, invoice_id, "finalize")) for invoice_id in [*invoices, invoices[0]]]
    statuses = [answer.status_code for answer in await asyncio.gather(*finalizing)]
    assert sorted(statuses) == [200] * CONCURRENT + [409]
    numbers = await rows(runtime, tenant, "SELECT number FROM invoices WHERE number IS NOT NULL")
    assert sorted(int(row["number"].removeprefix("INV-")) for row in numbers) == list(range(1, CONCURRENT + 1))
    [counter] = await rows(runtime, tenant, "SELECT last_number FROM invoice_counters")
    assert counter["last_number"] == CONCURRENT

    # Per tenant: another tenant's first invoice is number 1 too.
    bob = await customer(client, other, "Bob")
    theirs = await draft(client, other, bob, 100)
    assert (await act(client, other, theirs["id"], "finalize")).json()["number"] == "INV-1"


async def test_a_rolled_back_finalize_gives_its_number_back(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers, "num")
    ada = await customer(client, tenant)
    first, second = await draft(client, tenant, ada, 100), await draft(client, tenant, ada, 200)
    assert (await act(client, tenant, first["id"], "finalize")).json()["number"] == "INV-1"
    taken: list[int] = []
    with pytest.raises(RolledBackError):
        await take_and_roll_back(runtime, tenant.schema, taken)
    assert taken == [2]
    assert (await act(client, tenant, second["id"], "finalize")).json()["number"] == "INV-2"
