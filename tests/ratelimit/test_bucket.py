"""The token bucket's arithmetic, on a clock the test moves."""

from __future__ import annotations

from billplane.ratelimit import TenantLimiter
from tests.ratelimit.conftest import ManualClock


def test_a_full_bucket_admits_the_burst_then_refuses_until_a_token_refills() -> None:
    clock = ManualClock()
    limiter = TenantLimiter(clock)
    admitted = [limiter.admit(1, 1, 3) for _ in range(3)]
    assert [decision.allowed for decision in admitted] == [True, True, True]
    assert [decision.remaining for decision in admitted] == [2, 1, 0]
    assert [decision.reset_seconds for decision in admitted] == [1, 2, 3]

    refused = limiter.admit(1, 1, 3)
    assert (refused.allowed, refused.remaining, refused.retry_after_seconds, refused.limit) == (False, 0, 1, 3)
    clock.advance(0.999)
    assert not limiter.admit(1, 1, 3).allowed
    clock.advance(0.001)
    again = limiter.admit(1, 1, 3)
    assert (again.allowed, again.remaining) == (True, 0)


def test_a_refused_request_costs_nothing() -> None:
    clock = ManualClock()
    limiter = TenantLimiter(clock)
    assert limiter.admit(1, 1, 1).allowed
    for _ in range(50):  # a client hammering while refused does not push its own retry further out
        assert limiter.admit(1, 1, 1).retry_after_seconds == 1
    clock.advance(1)
    assert limiter.admit(1, 1, 1).allowed


def test_retry_after_is_whole_seconds_rounded_up() -> None:
    clock = ManualClock()
    limiter = TenantLimiter(clock)
    assert limiter.admit(1, 4, 1).allowed
    assert limiter.admit(1, 4, 1).retry_after_seconds == 1  # 0.25 s away: never "0"
    slow = TenantLimiter(clock)
    assert slow.admit(2, 1, 1).allowed
    clock.advance(0.5)
    assert slow.admit(2, 1, 1).retry_after_seconds == 1  # 0.5 s: 1
    assert TenantLimiter(clock).admit(3, 1, 1).retry_after_seconds == 0  # admitted: nothing to wait


def test_the_rate_refills_continuously_up_to_the_burst_only() -> None:
    clock = ManualClock()
    limiter = TenantLimiter(clock)
    for _ in range(10):
        assert limiter.admit(1, 10, 10).allowed
    assert not limiter.admit(1, 10, 10).allowed
    clock.advance(0.5)  # five tokens back at 10 a second
    assert sum(limiter.admit(1, 10, 10).allowed for _ in range(8)) == 5
    clock.advance(3600)  # an hour idle still gives only a full bucket
    assert sum(limiter.admit(1, 10, 10).allowed for _ in range(20)) == 10


def test_tenants_have_separate_buckets() -> None:
    limiter = TenantLimiter(ManualClock())
    assert limiter.admit(1, 1, 1).allowed
    assert not limiter.admit(1, 1, 1).allowed
    assert limiter.admit(2, 1, 1).allowed


def test_idle_tenants_are_forgotten_when_the_table_is_full() -> None:
    clock = ManualClock()
    limiter = TenantLimiter(clock, max_buckets=3)
    for tenant in (1, 2, 3):
        limiter.admit(tenant, 1, 5)
    clock.advance(1)  # every bucket is full again: the same as no bucket
    limiter.admit(4, 1, 5)
    assert len(limiter) == 1
    for tenant in (5, 6):
        limiter.admit(tenant, 1, 5)
    limiter.admit(7, 1, 5)  # all busy: the table starts over rather than grow past its bound
    assert len(limiter) <= 3
