"""Stripe's form encoding: ``a[b][0][c]=v`` keys split into their path."""

from __future__ import annotations

import re

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


def split_key(key: str) -> list[str] | None:
    """``["a", "b", "0", "c"]`` for ``a[b][0][c]``; None for a malformed key."""
    match = _KEY.fullmatch(key)
    if match is None:
        return None
    return [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]


def unflatten(pairs: list[tuple[str, str]]) -> dict[str, object]:
    """The nested value of flattened form pairs (lists where every key is an index)."""
    root: dict[str, object] = {}
    for key, value in pairs:
        path = split_key(key) or [key]
        node: dict[str, object] = root
        for segment in path[:-1]:
            child = node.setdefault(segment, {})
            if not isinstance(child, dict):
                child = {}
                node[segment] = child
            node = child
        node[path[-1]] = value
    return _lists(root)  # type: ignore[return-value]


def _lists(value: object) -> object:
    if not isinstance(value, dict):
        return value
    converted = {key: _lists(child) for key, child in value.items()}
    if converted and all(key.isdigit() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted
