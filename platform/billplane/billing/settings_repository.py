"""All SQL for the tenant's billing settings row (absent until first changed: the defaults)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.billing.models import BillingSettings


class SettingsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def current(self) -> BillingSettings:
        """The row, or an unsaved one holding the column defaults."""
        row = await self.session.scalar(select(BillingSettings).where(BillingSettings.id == 1))
        return row if row is not None else defaults()

    async def locked(self) -> BillingSettings:
        """The row, created first if absent, locked until the transaction ends (two PATCHes in turn)."""
        await self.session.execute(insert(BillingSettings).values(id=1).on_conflict_do_nothing(index_elements=["id"]))
        query = select(BillingSettings).where(BillingSettings.id == 1).with_for_update()
        return (await self.session.execute(query.execution_options(populate_existing=True))).scalar_one()


def defaults() -> BillingSettings:
    # Kept equal to the column defaults of tenant_0005 (tests compare them with a fresh row).
    return BillingSettings(id=1, dunning_retry_days=list(DEFAULT_RETRY_DAYS), dunning_final_action="cancel")


DEFAULT_RETRY_DAYS = (3, 5, 7)
