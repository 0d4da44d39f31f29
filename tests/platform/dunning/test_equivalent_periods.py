"""Plans whose periods are the same length by definition bill the same period: a change between a
yearly plan and one of 12 months, or a weekly one and one of 7 days, is prorated like any change
within one billing period; a change between periods that only come close (52 weeks, 30 days) is
still refused (docs/concepts/subscriptions.md, "Changes and proration")."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from billplane_sandbox.payment_methods import SUCCEEDS

from billplane.runtime import Runtime
from billplane.subscriptions.periods import period_end, same_length
from tests.platform.dunning.helpers import Client, Setup, another_plan, sandbox_customer
from tests.platform.invoices.helpers import rows

ITEMS = "SELECT amount FROM invoice_items ORDER BY id"
Interval = tuple[str, int]
_INTERVALS: list[Interval] = [
    ("year", 1), ("month", 12), ("month", 1), ("day", 30), ("day", 31), ("day", 365), ("day", 366),
    ("week", 52), ("week", 1), ("day", 7), ("week", 2), ("day", 14), ("month", 3),
]  # fmt: skip


def _starts() -> list[datetime]:
    """Every day of four years, a leap day among them, at an hour that is not midnight."""
    first = datetime(2027, 1, 1, 13, 30, tzinfo=UTC)
    return [first + timedelta(days=n) for n in range(4 * 366)]


# Anchors of each kind period_end treats apart: none, a day every month has, the 30th and 31st
# (restored after a short month), and a leap day.
_ANCHORS = [None, datetime(2026, 1, 15, 13, 30, tzinfo=UTC), datetime(2026, 1, 30, 13, 30, tzinfo=UTC),
            datetime(2026, 1, 31, 13, 30, tzinfo=UTC), datetime(2024, 2, 29, 13, 30, tzinfo=UTC)]  # fmt: skip


@pytest.mark.parametrize(("one", "other"), list(itertools.combinations(_INTERVALS, 2)))
def test_periods_count_as_the_same_exactly_when_they_end_alike_from_every_start(one: Interval, other: Interval) -> None:
    """Only what ``period_end`` computes identically for every start and anchor counts as the same
    period: a year from Feb 29 is 12 months from it, and an anchor on the 31st is restored after
    a short month by either; 52 weeks, 365 days or 30 days end elsewhere from some start."""
    alike = all(
        period_end(start, *one, anchor) == period_end(start, *other, anchor)
        for start in _starts()
        for anchor in _ANCHORS
    )
    assert (same_length(*one) == same_length(*other)) is alike


async def _subscribed(client: Client, setup: Setup, plan: int) -> str:
    body = {"customer_id": setup.customer, "plan_id": plan, "quantity": 2}
    created = await client.post("/v1/subscriptions", json=body, headers=setup.tenant.headers)
    assert created.status_code == 201, created.text
    return f"/v1/subscriptions/{created.json()['id']}"


async def _changed(client: Client, setup: Setup, url: str, plan: int) -> int:
    """The change to ``plan`` prorated now, previewed then made: both answer the same status."""
    body = {"plan_id": plan, "proration": "create_prorations"}
    shown = await client.post(f"{url}/preview", json=body, headers=setup.tenant.headers)
    changed = await client.patch(url, json=body, headers=setup.tenant.headers)
    assert shown.status_code == changed.status_code, (shown.text, changed.text)
    if changed.status_code == 422:
        assert [error["field"] for error in changed.json()["errors"]] == ["proration"]
    return changed.status_code


@pytest.mark.parametrize(
    ("old", "new"),
    [(("month", 12), ("year", 1)), (("year", 1), ("month", 12)), (("day", 14), ("week", 2)), (("week", 1), ("day", 7))],
)
async def test_a_change_between_periods_of_the_same_length_is_prorated(
    client: Client, admin_headers: dict[str, str], worker: Runtime, old: Interval, new: Interval
) -> None:
    setup = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, "eqper")
    before = await another_plan(
        client, setup, pricing_model="per_seat", amount=1000, billing_interval=old[0], interval_count=old[1]
    )
    after = await another_plan(
        client, setup, pricing_model="per_seat", amount=3000, billing_interval=new[0], interval_count=new[1]
    )
    url = await _subscribed(client, setup, before)

    assert await _changed(client, setup, url, after) == 200

    credit, charge = (row["amount"] for row in await rows(worker, setup.tenant, ITEMS))
    assert credit < 0 < charge  # the unused time of 2 x 10.00 credited, the rest charged at 2 x 30.00
    assert -credit * 3 - 3 <= charge <= -credit * 3 + 3  # the same share of one period, each rounded once


@pytest.mark.parametrize(("old", "new"), [(("year", 1), ("week", 52)), (("month", 1), ("day", 30))])
async def test_a_change_between_periods_that_only_come_close_is_still_refused(
    client: Client, admin_headers: dict[str, str], worker: Runtime, old: Interval, new: Interval
) -> None:
    setup = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, "neqper")
    before = await another_plan(
        client, setup, pricing_model="per_seat", amount=1000, billing_interval=old[0], interval_count=old[1]
    )
    after = await another_plan(
        client, setup, pricing_model="per_seat", amount=3000, billing_interval=new[0], interval_count=new[1]
    )
    url = await _subscribed(client, setup, before)

    assert await _changed(client, setup, url, after) == 422
    assert await rows(worker, setup.tenant, ITEMS) == []
