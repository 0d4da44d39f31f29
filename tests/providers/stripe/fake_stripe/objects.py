"""Answers shaped like Stripe's own example objects (``fixtures3.json``), with our fields written over."""

from __future__ import annotations

import copy
import itertools
import secrets
import time
from typing import Any

from .spec import load_json

_counter = itertools.count(1)


def new_id(prefix: str) -> str:
    return f"{prefix}_fake{next(_counter):06d}{secrets.token_hex(4)}"


def now() -> int:
    return int(time.time())


def fixture(resource: str, /, **fields: Any) -> dict[str, Any]:
    """A copy of Stripe's example ``resource`` object with ``fields`` written over it."""
    obj: dict[str, Any] = copy.deepcopy(load_json("fixtures3.json.gz")["resources"][resource])
    obj.update(fields)
    if "livemode" in obj:
        obj["livemode"] = False
    return obj


def list_of(data: list[dict[str, Any]], url: str, *, has_more: bool = False) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}
