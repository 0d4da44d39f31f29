"""The problem details of ``billplane.api.problems`` in the OpenAPI document.

Litestar describes a 400 of its own shape (``status_code``, ``detail``, ``extra``) on every
operation that takes input, which the API never sends, and marks every request body required;
routes cannot say otherwise but one by one. ``document_problems`` completes the rendered document
instead (``billplane.app``): the problem+json responses each operation can answer, and optional
bodies marked so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from litestar.status_codes import HTTP_400_BAD_REQUEST, HTTP_409_CONFLICT

from billplane.api.problems import CODES, PROBLEM_JSON
from billplane.idempotency.store import HEADER as IDEMPOTENCY_HEADER

# What `problem` sends, and which operation can answer which status.
PROBLEM_SCHEMA = "ProblemDetails"
FIELD_ERROR_SCHEMA = "ProblemFieldError"
_BODY_METHODS = ("post", "put", "patch")
_MENTIONED_STATUS = re.compile(r"\b([45]\d\d)\b")
# Statuses only some routes answer, documented where the route's description names them (the others
# follow from the route's key, path and method: a description may name them for another reason).
_NAMED_STATUSES = frozenset({409, 413, 502, 503})
# Routes other than a POST that refuse a change with 409 although their description does not say so,
# with what it means there. A POST answers 409 wherever it takes a key: its `Idempotency-Key` still in
# flight (billplane.idempotency.store); a PATCH or DELETE takes none, so answers only its route's own.
_UNNAMED_CONFLICTS = {
    "adminDeleteTenant": "The tenant still holds money at a provider: a live subscription it bills, or a "
    "payment or refund pending.",
    "updateCustomer": "`external_id` is another customer's.",
    "updateProviderAccount": "The stored secrets cannot be read (send both `credentials` and `webhook_secret`), "
    "or another default account of this provider was made at the same time.",
}
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
            "code": {"enum": [*CODES.values(), "error"], "description": "What went wrong, for a program."},
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
                "errors": [
                    {
                        "field": "slug",
                        "source": "body",
                        "message": "must be a lowercase letter, then 1-39 of a-z, 0-9 and _ (no capitals or hyphens)",
                    }
                ],
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


_IDEMPOTENCY_KEY: dict[str, Any] = {
    "name": IDEMPOTENCY_HEADER,
    "in": "header",
    "required": False,
    "description": "Makes the POST safe to retry: the same key and request get the first response again "
    "(`Idempotent-Replayed: true`); the same key with another request is a 422; while the first runs, a 409.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x21-\\x7e]+$"},
}


def document_problems(document: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI ``document`` (a rendered one, changed in place) with every operation's errors
    described as problem details, and optional request bodies marked so.

    Each operation lists what it can answer: 401, 422 (and 403 and 429 for a tenant key) where a key
    is needed, 404 where the path names an object, 400 where a body is read, 409 for a POST (its
    `Idempotency-Key`) and where the route refuses a change so, 503 for the routes that take no key,
    and 413, 502 and 503 where its description names them. Litestar's own error responses, of a shape
    the API never sends, are dropped.
    """
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(_SCHEMAS)
    for path, methods in document.get("paths", {}).items():
        for method, operation in methods.items():
            if isinstance(operation, dict) and "responses" in operation:
                _document_operation(path, method, operation)
    return document


def _document_operation(path: str, method: str, operation: dict[str, Any]) -> None:
    if method == "post" and operation.get("security"):  # read by billplane.idempotency.store, not by the route
        parameters: list[dict[str, Any]] = operation.setdefault("parameters", [])
        if not any(parameter.get("name") == IDEMPOTENCY_HEADER for parameter in parameters):
            parameters.append(_IDEMPOTENCY_KEY)
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
    if status == HTTP_409_CONFLICT and operation.get("operationId") in _UNNAMED_CONFLICTS:
        return _UNNAMED_CONFLICTS[operation["operationId"]]
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
    if (keys and method == "post") or operation.get("operationId") in _UNNAMED_CONFLICTS:
        statuses.add(409)
    return statuses


def _accepts_null(schema: Mapping[str, Any]) -> bool:
    kinds = schema.get("type")
    if kinds == "null" or (isinstance(kinds, list) and "null" in kinds):
        return True
    return any(_accepts_null(part) for key in ("oneOf", "anyOf") for part in schema.get(key) or [])
