"""The route handlers this domain adds to the app."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from billplane.provider_accounts.controller import ProviderAccountController

ROUTES: list[ControllerRouterHandler] = [ProviderAccountController]
