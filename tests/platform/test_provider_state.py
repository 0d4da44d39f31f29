"""A provider's view of a subscription copied onto the local row: never a period that starts before
the local one (billplane may have invoiced the local period already), and no period, trial end or
quantity at all from a provider that does not bill the subscription (billplane bills by its own)."""

from __future__ import annotations

from datetime import UTC, datetime

from billplane.plugins.contract import ProviderSubscription
from billplane.subscriptions.models import Subscription
from billplane.webhooks.provider_state import record_created, record_subscription

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
    record_subscription(row, calendar_month, provider_bills=True)
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
        provider_bills=True,
    )
    assert (row.current_period_start, row.current_period_end) == renewed


def test_a_provider_that_does_not_bill_sets_no_billing_times() -> None:
    row = _row()
    later = ProviderSubscription(
        provider_id="sbx_sub_1",
        status="past_due",
        current_period_start=datetime(2030, 2, 1, tzinfo=UTC),
        current_period_end=datetime(2030, 3, 1, tzinfo=UTC),
        trial_end=datetime(2030, 3, 1, tzinfo=UTC),
        quantity=7,
    )
    record_subscription(row, later, provider_bills=False)
    assert (row.current_period_start, row.current_period_end) == LOCAL
    assert (row.trial_end, row.quantity) == (None, 1)
    assert row.status == "past_due"  # the rest of its state is still taken


def test_the_answer_to_a_create_call_follows_the_same_rule() -> None:
    later = (datetime(2030, 2, 1, tzinfo=UTC), datetime(2030, 3, 1, tzinfo=UTC))
    created = ProviderSubscription(
        provider_id="sbx_sub_1", status="active", current_period_start=later[0], current_period_end=later[1]
    )
    mirrored, billed_there = _row(), _row()
    record_created(mirrored, created, provider_bills=False)
    record_created(billed_there, created, provider_bills=True)
    assert (mirrored.current_period_start, mirrored.current_period_end) == LOCAL
    assert (billed_there.current_period_start, billed_there.current_period_end) == later
