"""API shapes for usage records."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from sqlalchemy import Row

from billplane.api.types import ShortText, example_body
from billplane.db.mixins import MAX_ID

MAX_BATCH = 1000
Id = Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)]


class UsageRecordCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    subscription_id: Id
    # Units used (API calls, GB); for `max` and `last` plans a reading of the meter.
    quantity: Annotated[int, msgspec.Meta(ge=0, le=MAX_ID)]
    # When the usage happened, with a UTC offset; it must fall in the subscription's open period.
    # Kept to the microsecond: finer digits are cut (toward the past).
    timestamp: Annotated[datetime, msgspec.Meta(tz=True)]
    # The tenant's id for the event: a record with a subscription and client_event_id already
    # seen is not stored again (a retried batch is safe).
    client_event_id: ShortText


class UsageBatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    records: Annotated[list[UsageRecordCreate], msgspec.Meta(min_length=1, max_length=MAX_BATCH)]


class _Stamped(msgspec.Struct):
    timestamp: str


class _Stamps(msgspec.Struct):
    records: list[_Stamped]


_STAMPS = msgspec.json.Decoder(_Stamps)
_DATETIME = msgspec.json.Decoder(Annotated[datetime, msgspec.Meta(tz=True)])
# RFC 3339 has one dot, before the fraction of a second (msgspec takes no comma there).
_FRACTION = re.compile(r"\.([0-9]*)")
_MICROSECOND_DIGITS = 6


def cut_to_microseconds(body: bytes, batch: UsageBatch) -> UsageBatch:
    """``batch``, decoded from ``body``, with each timestamp sent finer than a microsecond cut to
    the microsecond at or before it. msgspec rounds those to the nearest microsecond, which moved a
    record sent 100 ns before its period's end to the end itself, out of the period. Refusing them
    would refuse every client that sends nanoseconds (Go's RFC3339Nano); cut toward the past, a
    record stays in the period it was sent in. The text sent is read again: the decoded datetime
    no longer tells."""
    for record, stamped in zip(batch.records, _STAMPS.decode(body).records, strict=True):
        fraction = _FRACTION.search(stamped.timestamp)
        if fraction is not None and len(fraction.group(1)) > _MICROSECOND_DIGITS:
            cut = stamped.timestamp[: fraction.start(1) + _MICROSECOND_DIGITS] + stamped.timestamp[fraction.end(1) :]
            record.timestamp = _DATETIME.decode(msgspec.json.encode(cut))
    return batch


Result = Literal["accepted", "duplicate", "refused"]


class UsageOutcome(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What happened to one record of the batch, in request order.

    accepted: stored now (``id``). duplicate: stored before, by an earlier request or earlier in
    this batch (``id`` of the stored record). refused: not stored; ``field`` and ``reason`` say why.
    """

    result: Result
    client_event_id: str
    subscription_id: int
    id: int | None = None
    field: str | None = None
    reason: str | None = None


class UsageBatchResult(msgspec.Struct, kw_only=True):
    data: list[UsageOutcome]
    accepted: int
    duplicates: int
    refused: int

    @classmethod
    def of(cls, outcomes: list[UsageOutcome]) -> UsageBatchResult:
        counts = {"accepted": 0, "duplicate": 0, "refused": 0}
        for outcome in outcomes:
            counts[outcome.result] += 1
        return cls(
            data=outcomes, accepted=counts["accepted"], duplicates=counts["duplicate"], refused=counts["refused"]
        )


class UsageRecord(msgspec.Struct, kw_only=True):
    id: int
    subscription_id: int
    quantity: int
    timestamp: datetime
    client_event_id: str
    created_at: datetime

    @classmethod
    def of(cls, row: Row[Any]) -> UsageRecord:
        return cls(
            id=row.id,
            subscription_id=row.subscription_id,
            quantity=row.quantity,
            timestamp=row.timestamp,
            client_event_id=row.client_event_id,
            created_at=row.created_at,
        )


class UsageSummary(msgspec.Struct, kw_only=True):
    """A metered subscription's usage in its current period, aggregated as its plan says."""

    subscription_id: int
    plan_id: int
    # sum: the total; max: the highest reading; last: the reading with the latest timestamp.
    aggregation: str
    period_start: datetime | None
    period_end: datetime | None
    quantity: int
    records: int


UsageBatchBody = Annotated[
    UsageBatch,
    example_body(
        "Two API-call counts",
        {
            "records": [
                {
                    "subscription_id": 42,
                    "quantity": 120,
                    "timestamp": "2025-01-15T10:00:00Z",
                    "client_event_id": "evt_0001",
                },
                {
                    "subscription_id": 42,
                    "quantity": 80,
                    "timestamp": "2025-01-15T11:00:00Z",
                    "client_event_id": "evt_0002",
                },
            ]
        },
    ),
]
