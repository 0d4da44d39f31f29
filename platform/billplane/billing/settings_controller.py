"""/v1/billing-settings: the tenant's dunning schedule and final action."""

from __future__ import annotations

from litestar import Controller, get, patch
from litestar.di import NamedDependency, Provide
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.billing.settings_schemas import BillingSettings, BillingSettingsUpdateBody
from billplane.billing.settings_service import SettingsService


async def provide_settings_service(tenant_session: NamedDependency[AsyncSession]) -> SettingsService:
    return SettingsService(tenant_session)


class BillingSettingsController(Controller):
    path = "/v1/billing-settings"
    tags = ["billing settings"]
    security = [{"apiKey": []}]
    dependencies = {"billing_settings": Provide(provide_settings_service)}

    @get("/", operation_id="getBillingSettings")
    async def get_billing_settings(self, billing_settings: NamedDependency[SettingsService]) -> BillingSettings:
        """The tenant's dunning schedule (retry days after the first failed payment) and final action."""
        return BillingSettings.of(await billing_settings.get())

    @patch("/", operation_id="updateBillingSettings")
    async def update_billing_settings(
        self, data: BillingSettingsUpdateBody, billing_settings: NamedDependency[SettingsService]
    ) -> BillingSettings:
        """Change the fields sent. `dunning_retry_days`: at most 10, each 1-60, strictly ascending (`[]`: no
        retry, the final action follows the first failure). `dunning_final_action`: `cancel` or `mark_unpaid`.

        Invoices already in dunning follow the new schedule from their next failure on.
        """
        return BillingSettings.of(await billing_settings.update(data))
