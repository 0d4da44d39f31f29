"""The per-record rules alone: every refusal, and the edges of the open period."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from billplane.usage.rules import CLOCK_SKEW, Meter, refusal

NOW = datetime(2025, 1, 20, 12, tzinfo=UTC)
OPEN = Meter(
    id=1,
    status="active",
    pricing_model="metered",
    period_start=datetime(2025, 1, 1, tzinfo=UTC),
    period_end=datetime(2025, 2, 1, tzinfo=UTC),
    ended=False,
    now=NOW,
)


def test_a_record_in_the_open_period_is_accepted() -> None:
    assert refusal(OPEN, NOW) is None


@pytest.mark.parametrize("status", ["trialing", "active", "past_due", "paused", "unpaid"])
def test_live_states_take_usage(status: str) -> None:
    assert refusal(replace(OPEN, status=status), NOW) is None


def test_an_incomplete_subscription_takes_usage_only_where_a_provider_bills_it() -> None:
    refused = refusal(replace(OPEN, status="incomplete"), NOW)
    assert refused is not None
    assert (refused.field, refused.reason.startswith("the subscription is incomplete: ")) == ("subscription_id", True)
    assert refusal(replace(OPEN, status="incomplete", report_to=7), NOW) is None  # billed there, by its rules


def test_a_record_before_the_plan_became_metered_in_the_period_is_refused() -> None:
    switch = datetime(2025, 1, 10, tzinfo=UTC)
    switched = replace(OPEN, metered_since=switch)
    assert refusal(switched, switch) is None
    before = refusal(switched, switch - timedelta(microseconds=1))
    assert before is not None
    assert (before.field, before.reason.startswith("before the subscription's plan became metered")) == (
        "timestamp",
        True,
    )
    # A switch in an earlier period: the open period's usage counts from its start.
    earlier = replace(OPEN, metered_since=datetime(2024, 12, 20, tzinfo=UTC))
    assert refusal(earlier, datetime(2025, 1, 1, tzinfo=UTC)) is None


def test_the_period_start_is_in_and_its_end_is_out() -> None:
    assert refusal(OPEN, datetime(2025, 1, 1, tzinfo=UTC)) is None
    before = refusal(OPEN, datetime(2025, 1, 1, tzinfo=UTC) - timedelta(microseconds=1))
    assert before is not None
    assert (before.field, before.reason.startswith("before the open period")) == ("timestamp", True)
    at_end = refusal(replace(OPEN, now=datetime(2025, 2, 5, tzinfo=UTC)), datetime(2025, 2, 1, tzinfo=UTC))
    assert at_end is not None
    assert (at_end.field, at_end.reason.startswith("after the open period")) == ("timestamp", True)


def test_a_little_clock_skew_is_forgiven_more_is_refused() -> None:
    assert refusal(OPEN, NOW + CLOCK_SKEW) is None
    late = refusal(OPEN, NOW + CLOCK_SKEW + timedelta(seconds=1))
    assert late is not None
    assert (late.field, late.reason.startswith("in the future")) == ("timestamp", True)


@pytest.mark.parametrize(
    ("meter", "reason"),
    [
        (None, "no such subscription"),
        (replace(OPEN, status="canceled"), "the subscription is canceled: it takes no more usage"),
        (replace(OPEN, status="incomplete_expired"), "the subscription is incomplete_expired: it takes no more usage"),
        (replace(OPEN, ended=True), "the subscription has ended: it takes no more usage"),
        (replace(OPEN, pricing_model="flat"), "the subscription's plan is not metered (flat)"),
        (replace(OPEN, period_start=None, period_end=None), "the subscription has no open period"),
    ],
)
def test_subscriptions_that_take_no_usage(meter: Meter | None, reason: str) -> None:
    refused = refusal(meter, NOW)
    assert refused is not None
    assert (refused.field, refused.reason) == ("subscription_id", reason)


ENDED = replace(OPEN, now=datetime(2025, 2, 1, 0, 0, 30, tzinfo=UTC), renews_metered=True)  # awaiting the run


def test_a_record_of_the_next_period_is_taken_while_the_ended_one_awaits_the_run() -> None:
    for moment in (datetime(2025, 2, 1, tzinfo=UTC), ENDED.now, ENDED.now + CLOCK_SKEW):
        assert refusal(ENDED, moment) is None
    assert refusal(ENDED, datetime(2025, 1, 31, 23, 59, tzinfo=UTC)) is None  # the ended period's, still open


@pytest.mark.parametrize(
    "meter",
    [
        replace(ENDED, renews_metered=False),  # ends with the period, or moves to a plan not metered
        replace(ENDED, report_to=7),  # the provider bills the usage, in its own periods
        replace(ENDED, now=datetime(2025, 1, 31, 23, 58, tzinfo=UTC)),  # not ended: the client's clock runs ahead
    ],
)
def test_a_record_after_the_open_period_is_refused_unless_the_next_one_will_bill_it(meter: Meter) -> None:
    refused = refusal(meter, datetime(2025, 2, 1, tzinfo=UTC))
    assert refused is not None
    assert (refused.field, refused.reason.startswith("after the open period")) == ("timestamp", True)


def test_an_unpaid_subscriptions_record_after_its_period_says_why_no_next_period_opens() -> None:
    refused = refusal(replace(ENDED, status="unpaid"), datetime(2025, 2, 1, tzinfo=UTC))  # the run does not move it on
    assert refused is not None
    assert refused.field == "timestamp"
    assert refused.reason == (
        "after the open period, which ends 2025-02-01T00:00:00+00:00; "
        "the subscription is unpaid: its next period starts once its open invoice is paid"
    )
