"""Stripe-shaped error answers."""

from __future__ import annotations

from typing import Any


class StripeFailure(Exception):  # noqa: N818 - it is an answer, not a bug in the fake
    """Raised by a handler: the fake answers ``status`` with Stripe's ``{"error": {...}}`` body."""

    def __init__(self, status: int, type_: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"error": {"type": type_, "message": message, **extra}}


def invalid(message: str, *, code: str | None = None, param: str | None = None, status: int = 400) -> StripeFailure:
    extra = {key: value for key, value in {"code": code, "param": param}.items() if value is not None}
    return StripeFailure(status, "invalid_request_error", message, **extra)


def missing(kind: str, object_id: str, param: str = "id") -> StripeFailure:
    return invalid(f"No such {kind}: '{object_id}'", code="resource_missing", param=param, status=404)
