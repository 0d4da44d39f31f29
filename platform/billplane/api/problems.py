"""RFC 9457 problem details for every error the API returns.

Each problem has ``type`` (about:blank: the status says it all), ``title``, ``status``, ``detail``,
a machine-readable ``code`` and, for invalid input, ``errors``: entries naming a field at fault with
its path and the reason.

``openapi_problems.document_problems`` describes them in the OpenAPI document.
"""

from __future__ import annotations

import logging
import re
from http import HTTPStatus
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import (
    HTTP_422_UNPROCESSABLE_ENTITY,
    HTTP_500_INTERNAL_SERVER_ERROR,
    HTTP_503_SERVICE_UNAVAILABLE,
)
from litestar.types import ExceptionHandlersMap

from billplane.api.pattern_words import in_words

PROBLEM_JSON = "application/problem+json"
logger = logging.getLogger("billplane.api")

CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    422: "validation_error",
    429: "rate_limited",
    502: "bad_gateway",
    503: "unavailable",
}
# msgspec reports a missing or unknown field on the object itself; the field's name is in the text.
_NAMED_FIELD = re.compile(r"(?:missing required|contains unknown) field `([^`]+)`")


class ConflictError(HTTPException):
    status_code = 409


class BadGatewayError(HTTPException):
    """A provider's plugin failed in a way it did not classify (its own bug): nothing was recorded."""

    status_code = 502


class ServiceUnavailableError(HTTPException):
    status_code = 503


class InvalidFieldError(HTTPException):
    """Input that parsed but is not acceptable; names the field so clients can show it."""

    status_code = HTTP_422_UNPROCESSABLE_ENTITY

    def __init__(self, field: str, message: str, *, source: str = "body") -> None:
        super().__init__(detail=f"{field}: {message}")
        self.errors = [{"field": field, "source": source, "message": message}]


class InvalidFieldsError(HTTPException):
    """Several fields at fault; rendered like `InvalidFieldError`, with one `errors` entry per field."""

    status_code = HTTP_422_UNPROCESSABLE_ENTITY

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__(detail="invalid fields: " + ", ".join(error["field"] for error in errors))
        self.errors = errors


class FieldErrors:
    """Collects field errors so that one response names every field at fault."""

    def __init__(self) -> None:
        self.errors: list[dict[str, str]] = []

    def add(self, field: str, message: str) -> None:
        self.errors.append({"field": field, "source": "body", "message": message})

    def raise_any(self) -> None:
        if len(self.errors) == 1:
            error = self.errors[0]
            raise InvalidFieldError(error["field"], error["message"])
        if self.errors:
            raise InvalidFieldsError(self.errors)


def problem(
    status: int, detail: str, *, errors: list[dict[str, str]] | None = None, headers: dict[str, str] | None = None
) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": CODES.get(status, "error"),
    }
    if errors:
        body["errors"] = errors
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field_errors(extra: Any) -> list[dict[str, str]]:
    errors = []
    for item in extra if isinstance(extra, list) else []:
        if not isinstance(item, dict):
            continue
        message = str(item.get("message", "invalid"))
        field = str(item.get("key", ""))
        if field == "data":  # Litestar's name for the whole body
            field = "$"
        named = _NAMED_FIELD.search(message)
        if named:  # on a nested object the key is the object's path: name the field inside it
            field = named.group(1) if field in {"$", ""} else f"{field}.{named.group(1)}"
        source = item.get("source", "body")
        source = getattr(source, "value", source)  # Litestar reports query errors with an enum
        errors.append({"field": field, "source": str(source), "message": in_words(message)})
    return errors


def _validation_handler(_request: Request[Any, Any, Any], exc: ValidationException) -> Response[dict[str, Any]]:
    errors = _field_errors(exc.extra)
    if not errors:  # the body is not JSON at all: nothing field-shaped to point at
        return problem(400, exc.detail)
    fields = ", ".join(error["field"] for error in errors)
    return problem(HTTP_422_UNPROCESSABLE_ENTITY, f"invalid fields: {fields}", errors=errors)


def _http_handler(_request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    errors = getattr(exc, "errors", None)
    return problem(exc.status_code, exc.detail, errors=errors, headers=exc.headers)


def _unexpected_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    if _lost_a_race(exc):
        # PostgreSQL chose this request's transaction to end a deadlock (or a serialization
        # conflict): it was rolled back whole, so sent again it runs as if for the first time.
        logger.warning("%s %s rolled back by PostgreSQL: %s", request.method, request.url.path, type(exc).__name__)
        detail = "a request running at the same time held what this one needed; nothing was changed: send it again"
        return problem(HTTP_503_SERVICE_UNAVAILABLE, detail, headers={"Retry-After": "1"})
    # The client learns nothing about internals; the log has the traceback.
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(HTTP_500_INTERNAL_SERVER_ERROR, "an unexpected error occurred")


# deadlock_detected, serialization_failure: the transaction lost a race, and was rolled back.
_RACE_LOST = frozenset({"40P01", "40001"})


def _lost_a_race(exc: BaseException) -> bool:
    """Whether ``exc`` is PostgreSQL ending the transaction to resolve a conflict with another (as
    SQLAlchemy wraps asyncpg's error: its ``orig``, and the asyncpg error under that)."""
    original = getattr(exc, "orig", None)
    errors = (original, getattr(original, "__cause__", None))
    return any(getattr(error, "sqlstate", None) in _RACE_LOST for error in errors)


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    ValidationException: _validation_handler,
    HTTPException: _http_handler,
    Exception: _unexpected_handler,
}
