"""The route handlers this domain adds to the app."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from billplane.webhooks.controller import WebhookController
from billplane.webhooks.events_controller import ProviderEventController

# Signed by the provider, no API key.
ROUTES: list[ControllerRouterHandler] = [WebhookController]
# The tenant's API: what its providers reported.
TENANT_ROUTES: list[ControllerRouterHandler] = [ProviderEventController]
