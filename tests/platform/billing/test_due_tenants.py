"""The run's queue of due tenants: every due tenant handed out once, in order, batch after batch;
the next batch is scanned by the biller that took the last tenant, before it bills that tenant."""

from __future__ import annotations

import asyncio

import pytest

from billplane.billing.run import _DueTenants

BATCHES = [["a", "b", "c"], ["d", "e"], ["f"], ["g", "h"]]
NOTHING_DUE = {"b", "f"}  # a batch whose tenants have nothing due is passed over


async def test_each_due_tenant_is_handed_out_once_in_order_across_batches() -> None:
    events: list[str] = []

    async def scan(batch: list[str]) -> dict[str, list[int]]:
        events.append(f"scan {batch[0]}")
        await asyncio.sleep(0)
        return {schema: [1] for schema in batch if schema not in NOTHING_DUE}

    due = _DueTenants(scan, iter(BATCHES))

    async def biller() -> None:
        while (taken := await due.next()) is not None:
            events.append(f"bill {taken[0]}")
            await asyncio.sleep(0.001)

    await asyncio.gather(biller(), biller())

    billed = [event.removeprefix("bill ") for event in events if event.startswith("bill")]
    assert billed == ["a", "c", "d", "e", "g", "h"]
    # The batch after [d, e] was scanned as e was taken, before e was billed; [f] had nothing due,
    # so [g, h] was scanned at once as well.
    assert events.index("scan f") < events.index("bill e")
    assert events.index("scan g") < events.index("bill e")
    assert [event for event in events if event.startswith("scan")] == ["scan a", "scan d", "scan f", "scan g"]


async def test_a_failing_scan_ends_the_queue_with_its_error() -> None:
    async def scan(batch: list[str]) -> dict[str, list[int]]:
        if batch[0] == "d":
            raise RuntimeError("scan failed")
        return {schema: [1] for schema in batch}

    due = _DueTenants(scan, iter(BATCHES))
    assert await due.next() == ("a", [1])
    assert await due.next() == ("b", [1])
    with pytest.raises(RuntimeError, match="scan failed"):
        await due.next()  # c is the batch's last: taking it scans the next batch
