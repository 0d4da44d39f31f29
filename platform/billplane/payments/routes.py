"""The route handlers this domain adds to the app."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from billplane.payments.controller import PaymentController, RefundController

ROUTES: list[ControllerRouterHandler] = [PaymentController, RefundController]
