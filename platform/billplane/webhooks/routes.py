"""The route handlers this domain adds to the app."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from billplane.webhooks.controller import WebhookController

ROUTES: list[ControllerRouterHandler] = [WebhookController]
