"""No JSON float in any request body: money is an integer or a decimal string, never a float.

Litestar converts bodies in msgspec's lax mode, which would take ``1000.0`` for an ``int``
field. billplane's API has no float field at all, so any float in a body is refused with a 422
naming its path, before the request is converted or anything is written.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from litestar import Request

from billplane.api.problems import FieldErrors

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


async def refuse_json_floats(request: Request[Any, Any, Any]) -> None:
    if request.method not in _BODY_METHODS or not await request.body():
        return
    errors = FieldErrors()
    for path in _float_paths(await request.json(), ""):
        errors.add(path, "a JSON float is never accepted: send an integer (or a decimal string where one is taken)")
    errors.raise_any()


def _float_paths(value: object, path: str) -> Iterator[str]:
    if isinstance(value, float):
        yield path or "$"
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _float_paths(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _float_paths(item, f"{path}[{index}]")
