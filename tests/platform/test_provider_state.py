"""A provider's view of a subscription copied onto the local row: never a period that starts before
the local one (billplane may have invoiced the local period already)."""

from __future__ import annotations

from datetime import UTC, datetime

from billplane.plugins.contract import ProviderSubscription
from billplane.subscriptions.models import Subscription
from billplane.webhooks.provider_state import record_subscription

LOCAL = (datetime(2030, 1, 15, tzinfo=UTC), datetime(2030, 2, 15, tzinfo=UTC))


def _row() -> Subscription:
    start, end = LOCAL
    return Subscription(status="active", current_period_start=start, current_period_end=end, quantity=1)


def test_an_earlier_period_is_not_taken_but_the_rest_of_the_state_is() -> None:
    row = _row()
    calendar_month = ProviderSubscription(
        provider_id="sbx_sub_1",
        status="past_due",
        current_period_start=datetime(2030, 1, 1, tzinfo=UTC),
        current_period_end=datetime(2030, 2, 1, tzinfo=UTC),
    )
    record_subscription(row, calendar_month)
    assert (row.current_period_start, row.current_period_end) == LOCAL
    assert row.status == "past_due"


def test_a_later_period_is_taken() -> None:
    row = _row()
    renewed = (datetime(2030, 2, 15, tzinfo=UTC), datetime(2030, 3, 15, tzinfo=UTC))
    record_subscription(
        row,
        ProviderSubscription(
            provider_id="sub_1", status="active", current_period_start=renewed[0], current_period_end=renewed[1]
        ),
    )
    assert (row.current_period_start, row.current_period_end) == renewed
