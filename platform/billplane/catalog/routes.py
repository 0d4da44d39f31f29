"""The route handlers this domain adds to the app."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from billplane.catalog.controller import PlanController, ProductController

ROUTES: list[ControllerRouterHandler] = [ProductController, PlanController]
