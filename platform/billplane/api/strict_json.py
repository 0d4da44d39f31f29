"""What no request may carry, checked before it is converted or anything is written.

No JSON float in a body: money is an integer or a decimal string, never a float. Litestar converts
bodies in msgspec's lax mode, which would take ``1000.0`` for an ``int`` field; billplane's API has
no float field at all, so any float is refused with a 422 naming its path.

No query parameter the route does not take: a misspelt filter (``?custmer_id=``) would answer the
whole list. Refused with a 422 naming it, as an unknown body field is.

No NUL character (U+0000) in a body's strings or keys, a query parameter or a path parameter:
PostgreSQL's ``text`` and ``jsonb`` cannot hold it, so it would fail the statement (a 500) rather
than be stored. Refused with a 422 naming the field or parameter.

No JSON value of another type than its field's: Litestar's lax conversion would take ``"7"`` for
an integer or ``"0"`` for a boolean. The body is decoded once more against the route's body type in
msgspec's strict mode; a value only the lax mode accepts is a 422 naming its path. What neither mode
accepts is left to Litestar, which reports it as before.

A body that is not JSON at all is a 400, also on routes that take no body.

No body where the route needs one: a 422 saying so, on ``$`` (Litestar would report its own
parameter's name, ``'data'``). A body whose fields are all optional is taken as ``X | None = None``
in the handler: left out, or ``null``, it is the defaults.

No body where the route takes none: an unknown field is a 422 wherever it is sent, so each field of
an object body is named (``$`` for a body that is not an object). Nothing, ``{}`` and ``null`` say
nothing and are let through.

These last two (``refuse_body_mismatch``) come after the Idempotency-Key check, where Litestar
finds a body's missing and unknown fields on the other routes; the request's transaction, rolled
back, keeps nothing of it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import msgspec
from litestar import Request
from litestar.exceptions import ClientException, SerializationException
from litestar.typing import FieldDefinition

from billplane.api.problems import FieldErrors, InvalidFieldError

# DELETE takes no body anywhere, so one sent is refused as on any route without one.
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Litestar's reserved keyword arguments: filled by the framework, never from the query string.
_RESERVED = frozenset({"request", "socket", "state", "scope", "headers", "cookies", "query", "data", "body"})
_FLOAT = "a JSON float is never accepted: send an integer (or a decimal string where one is taken)"
_NUL = "the NUL character (U+0000) cannot be stored"
_BODY_REQUIRED = "a JSON body is required"
_NO_BODY = "this route takes no body"


def refuse_bad_parameters(request: Request[Any, Any, Any]) -> None:
    """A 422 naming the first query parameter the route does not take (a misspelt filter would
    silently list everything), or the first query or path parameter holding a NUL character."""
    known = _query_names(request.route_handler) - request.path_params.keys()
    for name in request.query_params:
        if name not in known:
            takes = ", ".join(sorted(known)) or "none"
            raise InvalidFieldError(name, f"not a query parameter of this route (it takes: {takes})", source="query")
    for source, parameters in (("query", request.query_params.multi_items()), ("path", request.path_params.items())):
        for name, value in parameters:
            if isinstance(value, str) and "\x00" in value:
                raise InvalidFieldError(name, _NUL, source=source)


@functools.cache
def _query_names(handler: Any) -> frozenset[str]:
    """The handler's own parameters that are neither dependencies nor Litestar's reserved names
    (request, data...): its query parameters, and its path parameters."""
    parameters = set(handler.parsed_fn_signature.parameters)
    return frozenset(parameters - set(handler.resolve_dependencies()) - _RESERVED)


async def refuse_bad_input(request: Request[Any, Any, Any]) -> None:
    """The parameters (``refuse_bad_parameters``), then the body: floats, NUL characters and values
    of another JSON type, with every path at fault."""
    refuse_bad_parameters(request)
    if request.method not in _BODY_METHODS or not await request.body():
        return
    try:
        body = await request.json()
    except SerializationException as exc:
        raise ClientException("the body is not valid JSON") from exc
    errors = FieldErrors()
    for path, message in _bad_paths(body, ""):
        errors.add(path, message)
    errors.raise_any()
    _refuse_coercion(request, await request.body())


async def refuse_body_mismatch(request: Request[Any, Any, Any]) -> None:
    """A 422 for a missing body the route needs (on ``$``), or for a body sent to a route that takes
    none (each field, or ``$``). Called after ``refuse_bad_input`` and after the Idempotency-Key is
    checked, where Litestar finds a body's unknown fields: a key reused with another body is refused
    for that first, on every route alike."""
    if request.method not in _BODY_METHODS:
        return
    data = _body_parameter(request.route_handler)
    if not await request.body():
        if data is not None and not (data.is_optional or data.has_default):
            raise InvalidFieldError("$", _BODY_REQUIRED)
    elif data is None:
        _refuse_any_body(await request.json())


@functools.cache
def _body_parameter(handler: Any) -> FieldDefinition | None:
    """The route's body (``data``, the handler's or a dependency's, as Litestar looks for it), or
    None for a route that takes no body. A handler reading the raw ``body`` counts as taking one."""
    for signature in (
        handler.parsed_fn_signature,
        *(d.parsed_fn_signature for d in handler.resolve_dependencies().values()),
    ):
        for name in ("data", "body"):
            if name in signature.parameters:
                parameter: FieldDefinition = signature.parameters[name]
                return parameter
    return None


def _refuse_any_body(body: object) -> None:
    """A 422 for a body sent to a route that takes none: each field of an object, or ``$``."""
    if body is None or body == {}:
        return
    errors = FieldErrors()
    if isinstance(body, dict):
        for key in body:
            errors.add(str(key).replace("\x00", "\\u0000"), _NO_BODY)
    else:
        errors.add("$", _NO_BODY)
    errors.raise_any()


def _refuse_coercion(request: Request[Any, Any, Any], body: bytes) -> None:
    parameter = _body_parameter(request.route_handler)
    if parameter is None or parameter.name != "data":
        return
    strict, lax = _decoders(parameter.annotation)
    try:
        strict.decode(body)
    except msgspec.ValidationError as exc:
        try:
            lax.decode(body)
        except msgspec.ValidationError:
            return  # wrong in either mode: Litestar's conversion reports it
        message, _, where = str(exc).partition(" - at `")
        path = where.rstrip("`").removeprefix("$").removeprefix(".") or "$"
        raise InvalidFieldError(path, f"{message}: a JSON value is never converted to another type") from exc


@functools.cache
def _decoders(body_type: Any) -> tuple[msgspec.json.Decoder[Any], msgspec.json.Decoder[Any]]:
    return msgspec.json.Decoder(body_type, strict=True), msgspec.json.Decoder(body_type, strict=False)


def _bad_paths(value: object, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, float):
        yield path or "$", _FLOAT
    elif isinstance(value, str):
        if "\x00" in value:
            yield path or "$", _NUL
    elif isinstance(value, dict):
        for key, item in value.items():
            inner = f"{path}.{key}" if path else str(key)
            if "\x00" in key:
                yield inner.replace("\x00", "\\u0000"), _NUL
            yield from _bad_paths(item, inner)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _bad_paths(item, f"{path}[{index}]")
