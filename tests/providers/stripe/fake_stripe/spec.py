"""Stripe's OpenAPI spec, loaded once per test session, as a checker of requests."""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from .forms import split_key

SPEC_DIR = Path(__file__).resolve().parent.parent / "spec"
_INTEGER = re.compile(r"^-?\d+$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


@cache
def load_json(name: str) -> Any:
    with gzip.open(SPEC_DIR / name, "rt", encoding="utf-8") as file:
        return json.load(file)


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    body_schema: dict[str, Any] | None
    query: dict[str, dict[str, Any]]


class Spec:
    """Which operations exist and which parameters each accepts."""

    def __init__(self, document: dict[str, Any]) -> None:
        self._document = document
        routes: list[tuple[int, re.Pattern[str], str]] = []
        for template in document["paths"]:
            pattern = re.escape(template)
            params = len(re.findall(r"\\\{[^}]+\\\}", pattern))
            pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", pattern)
            routes.append((params, re.compile(f"^{pattern}$"), template))
        # A literal path (/v1/customers/search) wins over a template (/v1/customers/{customer}).
        self._routes = sorted(routes, key=lambda route: route[0])

    def operation(self, method: str, path: str) -> Operation | None:
        for _, pattern, template in self._routes:
            if pattern.match(path):
                op = self._document["paths"][template].get(method.lower())
                if op is None:
                    continue
                content = op.get("requestBody", {}).get("content", {})
                body = content.get("application/x-www-form-urlencoded", {}).get("schema")
                query = {p["name"]: p.get("schema", {}) for p in op.get("parameters", []) if p.get("in") == "query"}
                return Operation(method.upper(), template, body, query)
        return None

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            node: Any = self._document
            for part in schema["$ref"].lstrip("#/").split("/"):
                node = node[part]
            schema = node
        return schema

    def accepts(self, schema: dict[str, Any], path: list[str], value: str) -> bool:
        """Whether ``value`` at ``path`` (the key's segments below ``schema``) is valid."""
        schema = self.resolve(schema)
        if "anyOf" in schema:
            return any(self.accepts(option, path, value) for option in schema["anyOf"])
        kind = schema.get("type")
        if not path:
            return _leaf(schema, kind, value)
        child = _child(schema, kind, path[0])
        return child is True or (isinstance(child, dict) and self.accepts(child, path[1:], value))

    def check(self, method: str, path: str, query: list[tuple[str, str]], form: list[tuple[str, str]]) -> list[str]:
        """Every way this request differs from the spec (empty when it is valid)."""
        op = self.operation(method, path)
        if op is None:
            return [f"{method} {path}: no such operation in Stripe's spec"]
        problems = []
        for key, value in query:
            segments = split_key(key)
            if segments is None or segments[0] not in op.query:
                problems.append(f"{method} {op.template}: unknown query parameter {key!r}")
            elif not self.accepts(op.query[segments[0]], segments[1:], value):
                problems.append(f"{method} {op.template}: invalid query parameter {key}={value!r}")
        if form and op.body_schema is None:
            problems.append(f"{method} {op.template}: takes no form parameters, got {[k for k, _ in form]}")
        body = op.body_schema or {}
        for key, value in form if op.body_schema is not None else []:
            segments = split_key(key)
            if segments is None or not self.accepts(body, segments, value):
                problems.append(f"{method} {op.template}: unknown or invalid parameter {key}={value!r}")
        return problems


def _child(schema: dict[str, Any], kind: object, segment: str) -> dict[str, Any] | bool:
    """The schema of ``segment`` below ``schema``; True for any value, False for none."""
    if kind == "array" or "items" in schema:
        return schema.get("items", {}) if segment.isdigit() else False
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        if segment in properties:
            return dict(properties[segment])
        extra = schema.get("additionalProperties", False)
        return extra if isinstance(extra, dict | bool) else False
    return False


def _leaf(schema: dict[str, Any], kind: object, value: str) -> bool:
    if "enum" in schema:
        return value in [str(option) for option in schema["enum"]]
    if kind == "integer":
        return bool(_INTEGER.match(value))
    if kind == "number":
        return bool(_NUMBER.match(value))
    if kind == "boolean":
        return value in {"true", "false"}
    if kind in {"object", "array"}:
        return False
    max_length = schema.get("maxLength")
    return not (isinstance(max_length, int) and len(value) > max_length)


@cache
def stripe_spec() -> Spec:
    return Spec(load_json("spec3.json.gz"))
