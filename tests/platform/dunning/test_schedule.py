"""The retry schedule's arithmetic: counted from the first failure, whatever attempt failed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from billplane.billing.dunning import next_attempt

FIRST = datetime(2030, 1, 10, 12, tzinfo=UTC)
DAYS = [3, 5, 7]


def test_the_first_failure_schedules_the_first_retry() -> None:
    assert next_attempt(DAYS, 1, FIRST, None) == FIRST + timedelta(days=3)


@pytest.mark.parametrize(("failed", "day"), [(2, 5), (3, 7)])
def test_later_failures_count_from_the_first_one_not_from_when_they_settled(failed: int, day: int) -> None:
    previous_due = FIRST + timedelta(days=DAYS[failed - 2])
    settled_late = previous_due + timedelta(hours=9)  # the retry ran late: the schedule does not drift
    assert next_attempt(DAYS, failed, settled_late, previous_due) == FIRST + timedelta(days=day)


def test_no_retry_is_left_after_the_last_one() -> None:
    assert next_attempt(DAYS, 4, FIRST + timedelta(days=7), FIRST + timedelta(days=7)) is None


def test_an_empty_schedule_retries_nothing() -> None:
    assert next_attempt([], 1, FIRST, None) is None


def test_a_failure_without_a_previous_due_time_starts_over_from_now() -> None:
    assert next_attempt(DAYS, 2, FIRST, None) == FIRST + timedelta(days=5)
