"""The route handlers this domain adds to the app."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from billplane.usage.controller import SubscriptionUsageController, UsageRecordController

ROUTES: list[ControllerRouterHandler] = [UsageRecordController, SubscriptionUsageController]
