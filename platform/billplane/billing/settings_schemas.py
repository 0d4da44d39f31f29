"""API shapes of the tenant's billing settings: the dunning schedule and its final action."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from billplane.api.types import Patch, example_body
from billplane.billing.models import BillingSettings as SettingsRow

FinalAction = Literal["cancel", "mark_unpaid"]
MAX_RETRIES = 10
MAX_RETRY_DAY = 60


class BillingSettings(msgspec.Struct, kw_only=True):
    # Days after an invoice's first failed payment on which it is charged again, ascending.
    dunning_retry_days: list[int]
    # After the last retry fails: `cancel` (subscription canceled, invoice uncollectible) or
    # `mark_unpaid` (subscription unpaid, invoice left open).
    dunning_final_action: str
    updated_at: datetime | None

    @classmethod
    def of(cls, row: SettingsRow) -> BillingSettings:
        return cls(
            dunning_retry_days=list(row.dunning_retry_days),
            dunning_final_action=row.dunning_final_action,
            updated_at=row.updated_at,
        )


class BillingSettingsUpdate(Patch):
    # Checked by the service (ascending, 1-60, at most 10), so that each refusal names its reason.
    dunning_retry_days: list[int] | msgspec.UnsetType = msgspec.UNSET
    dunning_final_action: FinalAction | msgspec.UnsetType = msgspec.UNSET


BillingSettingsUpdateBody = Annotated[
    BillingSettingsUpdate,
    example_body("Retry after 1, 3 and 10 days, then mark unpaid", {
        "dunning_retry_days": [1, 3, 10], "dunning_final_action": "mark_unpaid",
    }),
]  # fmt: skip
