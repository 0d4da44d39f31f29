"""The route handlers this domain adds to the app."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from billplane.events.controller import EventController, WebhookEndpointController

ROUTES: list[ControllerRouterHandler] = [EventController, WebhookEndpointController]
