"""API shapes of test clocks."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from billplane.api.types import ShortText, example_body
from billplane.billing.models import TestClock as ClockRow
from billplane.catalog.schemas import RowId


class TestClock(msgspec.Struct, kw_only=True):
    id: int
    name: str | None
    # The clock's "now": what its customers' subscriptions, invoices and dunning see.
    frozen_time: datetime
    # ready, or advancing while the worker moves it towards `advancing_to`.
    status: str
    # Where the running advance stops (None when ready).
    advancing_to: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: ClockRow, advancing_to: datetime | None = None) -> TestClock:
        return cls(
            id=row.id,
            name=row.name,
            frozen_time=row.frozen_time,
            status=row.status,
            advancing_to=advancing_to if row.status == "advancing" else None,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class TestClockAdvanceFailed(msgspec.Struct, kw_only=True):
    """The data of ``test_clock.advance_failed``: an advance stopped before its target."""

    # The clock as it stopped: ready again, frozen at the last step that went through.
    test_clock: TestClock
    # The target it did not reach.
    advancing_to: datetime | None
    reason: str


class TestClockCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    frozen_time: datetime
    name: ShortText | None = None


# Required fields of the bodies on a clock's path default to None and are checked after the clock is
# found: naming another tenant's clock is a 404 whatever the body (test_isolation.py).
class TestClockAttach(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    customer_id: RowId | None = None


class TestClockAdvance(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    to: datetime | None = None


TestClockCreateBody = Annotated[
    TestClockCreate,
    example_body("A clock starting on 1 January 2030", {"name": "Renewals", "frozen_time": "2030-01-01T00:00:00Z"}),
]
TestClockAttachBody = Annotated[TestClockAttach, example_body("Put customer 1 on the clock", {"customer_id": 1})]
TestClockAdvanceBody = Annotated[TestClockAdvance, example_body("Three months on", {"to": "2030-04-01T00:00:00Z"})]
