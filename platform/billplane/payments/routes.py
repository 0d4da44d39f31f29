"""The route handlers this domain adds to the app."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from billplane.payments.controller import PaymentController, RefundController
from billplane.payments.methods_controller import PaymentMethodController

ROUTES: list[ControllerRouterHandler] = [PaymentController, RefundController, PaymentMethodController]
