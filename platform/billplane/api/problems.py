"""RFC 9457 problem details for every error the API returns.

Each problem has ``type`` (about:blank: the status says it all), ``title``, ``status``, ``detail``,
a machine-readable ``code`` and, for invalid input, ``errors``: entries naming a field at fault with
its path and the reason.

``document_problems`` describes them in the OpenAPI document, where Litestar would describe a 400
of its own shape (``status_code``, ``detail``, ``extra``) that the API never sends.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_409_CONFLICT,
    HTTP_422_UNPROCESSABLE_ENTITY,
    HTTP_500_INTERNAL_SERVER_ERROR,
)
from litestar.types import ExceptionHandlersMap

PROBLEM_JSON = "application/problem+json"
logger = logging.getLogger("billplane.api")

_CODES = {
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
        "code": _CODES.get(status, "error"),
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
        errors.append({"field": field, "source": str(source), "message": message})
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
    # The client learns nothing about internals; the log has the traceback.
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(HTTP_500_INTERNAL_SERVER_ERROR, "an unexpected error occurred")


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    ValidationException: _validation_handler,
    HTTPException: _http_handler,
    Exception: _unexpected_handler,
}


# The OpenAPI document: what `problem` sends, and which operation can answer which status.
PROBLEM_SCHEMA = "ProblemDetails"
FIELD_ERROR_SCHEMA = "ProblemFieldError"
_BODY_METHODS = ("post", "put", "patch")
_MENTIONED_STATUS = re.compile(r"\b([45]\d\d)\b")
# Statuses only some routes answer, documented where the route's description names them (the others
# follow from the route's key, path and method: a description may name them for another reason).
_NAMED_STATUSES = frozenset({409, 413, 502, 503})
_SCHEMAS: dict[str, dict[str, Any]] = {
    PROBLEM_SCHEMA: {
        "type": "object",
        "description": "An error (RFC 9457), sent as `application/problem+json`.",
        "required": ["type", "title", "status", "detail", "code"],
        "properties": {
            "type": {"const": "about:blank", "description": "Always `about:blank`: the status says it all."},
            "title": {"type": "string", "description": "The status's phrase."},
            "status": {"type": "integer", "description": "The HTTP status."},
            "detail": {"type": "string", "description": "What went wrong, for a person."},
            "code": {"enum": [*_CODES.values(), "error"], "description": "What went wrong, for a program."},
            "errors": {
                "type": "array",
                "items": {"$ref": f"#/components/schemas/{FIELD_ERROR_SCHEMA}"},
                "description": "Invalid input only: the field or fields at fault (see the API conventions).",
            },
        },
        "examples": [
            {
                "type": "about:blank",
                "title": "Unprocessable Entity",
                "status": 422,
                "detail": "invalid fields: slug",
                "code": "validation_error",
                "errors": [{"field": "slug", "source": "body", "message": "Expected `str` matching regex ..."}],
            }
        ],
    },
    FIELD_ERROR_SCHEMA: {
        "type": "object",
        "description": "A field at fault in a problem's `errors`.",
        "required": ["field", "message"],
        "properties": {
            "field": {"type": "string", "description": "Its path (`lines[0].quantity`), or `$` for the whole body."},
            "message": {"type": "string", "description": "Why it is refused."},
            "source": {"type": "string", "description": "Where it was sent: `body`, `query`, `path` or `header`."},
        },
    },
}
_MEANINGS = {
    400: "The body is not JSON.",
    401: "No, malformed, unknown or revoked key (with `WWW-Authenticate: Bearer`).",
    403: "The tenant is suspended, or the API key's scopes do not allow this request.",
    404: "No such object (another tenant's is indistinguishable from none).",
    409: "A conflict: a duplicate, or a state or rule that refuses the change (see the description).",
    413: "The body is over 1 MiB.",
    422: "A field or query parameter missing, unknown, of the wrong type or out of range; `errors` names it.",
    429: "Over the tenant's request rate limit: wait `Retry-After` seconds.",
    502: "A provider's plugin failed with an error of its own: nothing was changed.",
    503: "The database (`/health`) or the provider cannot be reached now (`Retry-After` when it said).",
}
_IN_FLIGHT = " On a POST, also an `Idempotency-Key` whose first request is still in flight."
_HEADERS = {
    401: {"WWW-Authenticate": {"description": '`Bearer realm="billplane"`', "schema": {"type": "string"}}},
    429: {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}},
}


def document_problems(document: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI ``document`` (a rendered one, changed in place) with every operation's errors
    described as problem details, and optional request bodies marked so.

    Each operation lists what it can answer: 401, 422 (and 403 and 429 for a tenant key) where a key
    is needed, 404 where the path names an object, 400 where a body is read, 409 for a POST or PATCH
    (a DELETE where its description names it), 503 for the routes that take no key, and 413, 502 and
    503 where its description names them. Litestar's own error responses, of a shape the API never sends, are dropped.
    """
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(_SCHEMAS)
    for path, methods in document.get("paths", {}).items():
        for method, operation in methods.items():
            if isinstance(operation, dict) and "responses" in operation:
                _document_operation(path, method, operation)
    return document


def _document_operation(path: str, method: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation["responses"]
    for litestar_error in [key for key, response in responses.items() if _is_litestar_error(key, response)]:
        del responses[litestar_error]
    for status in sorted(_statuses(path, method, operation)):
        meaning = _meaning(status, method, operation)
        response: dict[str, Any] = {
            "description": meaning,
            "content": {PROBLEM_JSON: {"schema": {"$ref": f"#/components/schemas/{PROBLEM_SCHEMA}"}}},
        }
        if status in _HEADERS:
            response["headers"] = _HEADERS[status]
        responses.setdefault(str(status), response)
    body = operation.get("requestBody")
    if body and all(_accepts_null(media.get("schema") or {}) for media in (body.get("content") or {}).values()):
        body["required"] = False  # `X | None = None`: left out, it is the defaults


def _meaning(status: int, method: str, operation: Mapping[str, Any]) -> str:
    if status == HTTP_400_BAD_REQUEST and not operation.get("security"):  # a provider's webhook: its own rules
        return "The body is refused (see the description)."
    return _MEANINGS[status] + (_IN_FLIGHT if status == HTTP_409_CONFLICT and method == "post" else "")


def _is_litestar_error(status: str, response: Mapping[str, Any]) -> bool:
    return status[:1] in {"4", "5"} and PROBLEM_JSON not in (response.get("content") or {})


def _statuses(path: str, method: str, operation: Mapping[str, Any]) -> set[int]:
    keys = {name for requirement in operation.get("security") or [] for name in requirement}
    description = str(operation.get("description") or "")
    statuses = {int(status) for status in _MENTIONED_STATUS.findall(description)} & _NAMED_STATUSES
    if keys:
        statuses |= {401, 422}
    if "apiKey" in keys:
        statuses |= {403, 429}
    if not keys:
        statuses.add(503)
    if "{" in path:
        statuses.add(404)
    if method in _BODY_METHODS:
        statuses.add(400)
    if keys and method in {"post", "patch"}:
        statuses.add(409)
    return statuses


def _accepts_null(schema: Mapping[str, Any]) -> bool:
    kinds = schema.get("type")
    if kinds == "null" or (isinstance(kinds, list) and "null" in kinds):
        return True
    return any(_accepts_null(part) for key in ("oneOf", "anyOf") for part in schema.get(key) or [])
