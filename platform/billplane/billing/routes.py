"""The route handlers the billing engine adds to the app: billing settings, test clocks, invoice items."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from billplane.billing.clocks_controller import TestClockController
from billplane.billing.items_controller import InvoiceItemController
from billplane.billing.settings_controller import BillingSettingsController

ROUTES: list[ControllerRouterHandler] = [BillingSettingsController, TestClockController, InvoiceItemController]
