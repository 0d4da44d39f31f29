"""A real app on the test database with a small default limit and a clock the test moves."""

from __future__ import annotations

import pytest
from litestar import Litestar

from billplane.app import create_app
from billplane.ratelimit import RateLimits
from billplane.settings import RateLimitSettings, Settings

# Small enough to exhaust in a few requests; the burst differs from the rate so a test can tell them apart.
PER_SECOND = 2
BURST = 3


class ManualClock:
    """Monotonic seconds that move only when the test says so: no sleeping, no flakiness."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return Settings(
        database=settings.database,
        security=settings.security,
        rate_limit=RateLimitSettings(per_second=PER_SECOND, burst=BURST),
    )


@pytest.fixture
def app(settings: Settings, clock: ManualClock) -> Litestar:
    app = create_app(settings)
    limits: RateLimits = app.state.rate_limits
    limits.limiter.clock = clock
    return app
