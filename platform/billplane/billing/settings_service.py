"""Reading and changing the tenant's billing settings. Never commits: the request owns the transaction."""

from __future__ import annotations

from itertools import pairwise

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.api.problems import InvalidFieldError
from billplane.billing.models import BillingSettings
from billplane.billing.settings_repository import SettingsRepository
from billplane.billing.settings_schemas import MAX_RETRIES, MAX_RETRY_DAY, BillingSettingsUpdate
from billplane.billing.settings_schemas import BillingSettings as SettingsView
from billplane.events.changes import changed
from billplane.events.emit import emit

RETRY_DAYS = "dunning_retry_days"


def checked_retry_days(days: list[int]) -> list[int]:
    """The schedule if acceptable, else a 422 that says which rule it breaks."""
    if len(days) > MAX_RETRIES:
        raise InvalidFieldError(RETRY_DAYS, f"at most {MAX_RETRIES} retries; {len(days)} given")
    for day in days:
        if not 1 <= day <= MAX_RETRY_DAY:
            raise InvalidFieldError(RETRY_DAYS, f"each retry is 1 to {MAX_RETRY_DAY} days after the first failure")
    if any(later <= earlier for earlier, later in pairwise(days)):
        raise InvalidFieldError(RETRY_DAYS, "days must be strictly ascending (each retry after the one before)")
    return days


class SettingsService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.repository = SettingsRepository(session)

    async def get(self) -> BillingSettings:
        return await self.repository.current()

    async def update(self, data: BillingSettingsUpdate) -> BillingSettings:
        changes = data.changes()
        if RETRY_DAYS in changes:
            checked_retry_days(changes[RETRY_DAYS])
        row = await self.repository.locked()
        before = SettingsView.of(row)
        if RETRY_DAYS in changes:
            row.dunning_retry_days = changes[RETRY_DAYS]
        if "dunning_final_action" in changes:
            row.dunning_final_action = changes["dunning_final_action"]
        if not changed(before, SettingsView.of(row)):
            return row  # the values it has already: nothing to write, no event
        row.updated_at = func.now()
        await self.session.flush()
        await self.session.refresh(row)
        await emit(self.session, "billing_settings.updated", "billing_settings", row.id, SettingsView.of(row))
        return row
