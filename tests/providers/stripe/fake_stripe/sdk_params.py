"""Requests newer than the 2022 spec, checked against the request types the ``stripe`` package declares.

Billing Meters (and a metered Price's ``recurring[meter]``) came after the vendored spec; the SDK's
``TypedDict`` params are generated from Stripe's current spec, so they are the next best authority.
"""

from __future__ import annotations

import re
import sys
import types
import typing
from functools import cache
from typing import Any, ForwardRef, Literal, Union, get_args, get_origin

import typing_extensions
from stripe._request_options import RequestOptions
from stripe.params import PriceCreateParams
from stripe.params.billing import MeterCreateParams, MeterEventCreateParams, MeterListParams

from .forms import split_key

# Whole operations the 2022 spec lacks.
OPERATIONS: dict[tuple[str, str], type] = {
    ("POST", "/v1/billing/meters"): MeterCreateParams,
    ("GET", "/v1/billing/meters"): MeterListParams,
    ("POST", "/v1/billing/meter_events"): MeterEventCreateParams,
}
# Single parameters of spec operations that the 2022 spec lacks: accepted only when the SDK declares them.
ADDITIONS: dict[tuple[str, str], tuple[type, frozenset[str]]] = {
    ("POST", "/v1/prices"): (PriceCreateParams, frozenset({"recurring[meter]"})),
}
_OPTIONS = frozenset(RequestOptions.__annotations__)
_INTEGER = re.compile(r"^-?\d+$")


def _resolve(annotation: Any, owner: type) -> Any:
    if isinstance(annotation, str):
        annotation = ForwardRef(annotation)
    if isinstance(annotation, ForwardRef):
        namespace = {**vars(typing), **vars(sys.modules[owner.__module__])}
        return eval(annotation.__forward_arg__, namespace)  # noqa: S307 - the SDK's own annotations
    return annotation


@cache
def _fields(typed_dict: type) -> dict[str, Any]:
    return {
        key: _resolve(annotation, typed_dict)
        for key, annotation in typed_dict.__annotations__.items()
        if key not in _OPTIONS
    }


def accepts(annotation: Any, path: list[str], value: str, owner: type) -> bool:  # noqa: PLR0911
    annotation = _resolve(annotation, owner)
    origin = get_origin(annotation)
    if origin in {typing.NotRequired, typing.Required, typing_extensions.NotRequired, typing_extensions.Required}:
        return accepts(get_args(annotation)[0], path, value, owner)
    if origin in {Union, types.UnionType}:
        return any(accepts(option, path, value, owner) for option in get_args(annotation))
    if origin is Literal:
        return not path and value in [str(option) for option in get_args(annotation)]
    if typing_extensions.is_typeddict(annotation):
        fields = _fields(annotation)
        return bool(path) and path[0] in fields and accepts(fields[path[0]], path[1:], value, annotation)
    if origin is list:
        return bool(path) and path[0].isdigit() and accepts(get_args(annotation)[0], path[1:], value, owner)
    if origin is dict or (isinstance(origin, type) and issubclass(origin, dict)):
        return bool(path) and accepts(get_args(annotation)[-1], path[1:], value, owner)
    if path:
        return False
    if annotation is bool:
        return value in {"true", "false"}
    if annotation is int:
        return bool(_INTEGER.match(value))
    return annotation is str


def check(typed_dict: type, method: str, path: str, pairs: list[tuple[str, str]]) -> list[str]:
    problems = []
    for key, value in pairs:
        segments = split_key(key)
        if segments is None or not accepts(typed_dict, segments, value, typed_dict):
            problems.append(f"{method} {path}: {typed_dict.__name__} has no parameter {key}={value!r}")
    return problems
