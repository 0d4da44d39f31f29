"""Checks requests against PayPal's OpenAPI documents: the fake PayPal's referee.

A request must name an operation of the specs (method and path template), send only query
parameters and PayPal headers the operation declares, and send a JSON body that validates against
the operation's request schema. PayPal's schemas rarely forbid additional properties, so every
property name is also checked, recursively, against the properties the schema declares: a
misspelt field fails here instead of being silently ignored by PayPal.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator  # type: ignore[import-untyped] # no stubs in the dev group

SPEC_DIR = Path(__file__).parent / "spec"
Json = dict[str, Any]

# Headers of HTTP itself and of PayPal's common request headers, which PayPal accepts on every call
# although an operation's parameters do not always list them (its docs: "HTTP request headers").
_COMMON_HEADERS = frozenset(
    {
        "host", "accept", "accept-encoding", "connection", "content-length", "content-type", "user-agent",
        "authorization", "paypal-request-id", "prefer",
    }
)  # fmt: skip
_METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    pattern: re.Pattern[str]
    parameters: tuple[Json, ...]
    body_schema: Json | None
    body_required: bool
    components: Json

    def declared(self, where: str) -> set[str]:
        return {str(p["name"]).lower() for p in self.parameters if p.get("in") == where}


def _resolve(node: Json, document: Json) -> Json:
    while "$ref" in node:
        target: Any = document
        for part in str(node["$ref"]).removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _operations(document: Json) -> Iterator[Operation]:
    for template, item in document["paths"].items():
        shared = [_resolve(p, document) for p in item.get("parameters", [])]
        pattern = re.compile("^" + re.sub(r"\{[^/]+\}", "[^/]+", template) + "$")
        for method in _METHODS:
            if method not in item:
                continue
            op = item[method]
            body = op.get("requestBody")
            schema = None
            if body is not None:
                body = _resolve(body, document)
                schema = body.get("content", {}).get("application/json", {}).get("schema")
            yield Operation(
                method=method.upper(),
                template=template,
                pattern=pattern,
                parameters=tuple(shared + [_resolve(p, document) for p in op.get("parameters", [])]),
                body_schema=schema,
                body_required=bool(body and body.get("required")),
                components=document.get("components", {}),
            )


class SpecChecker:
    def __init__(self, documents: list[Json]) -> None:
        self.operations = [op for document in documents for op in _operations(document)]

    @classmethod
    def load(cls, directory: Path = SPEC_DIR) -> SpecChecker:
        return cls([json.loads(gzip.decompress(path.read_bytes())) for path in sorted(directory.glob("*.json.gz"))])

    def find(self, method: str, path: str) -> Operation | None:
        found = [op for op in self.operations if op.method == method and op.pattern.match(path)]
        # A literal segment beats a template one: /webhooks-lookup over /webhooks/{id}.
        return min(found, key=lambda op: op.template.count("{"), default=None)

    def check(
        self, method: str, path: str, query: Mapping[str, list[str]], headers: Mapping[str, str], body: bytes
    ) -> list[str]:
        """Every way the request breaks the specs (empty when it conforms)."""
        op = self.find(method, path)
        if op is None:
            return [f"{method} {path}: no such operation in PayPal's specs"]
        where = f"{method} {op.template}"
        problems = [
            f"{where}: undeclared query parameter {name!r}" for name in query if name not in op.declared("query")
        ]
        names = {name.lower() for name in headers}
        problems += [
            f"{where}: undeclared header {name!r}"
            for name in sorted(names)
            if name not in _COMMON_HEADERS and name not in op.declared("header")
        ]
        problems += [
            f"{where}: missing required {p['in']} parameter {p['name']!r}"
            for p in op.parameters
            if p.get("required") and p["in"] in {"header", "query"}
            and str(p["name"]).lower() not in (names if p["in"] == "header" else set(query))
        ]  # fmt: skip
        return problems + self._check_body(op, where, body)

    def _check_body(self, op: Operation, where: str, body: bytes) -> list[str]:
        if not body:
            return [f"{where}: the request body is required"] if op.body_required else []
        if op.body_schema is None:
            return [f"{where}: the operation takes no JSON body"]
        try:
            instance = json.loads(body)
        except ValueError:
            return [f"{where}: the body is not JSON"]
        root = {**op.body_schema, "components": op.components}
        validator = Draft7Validator(root)
        problems = [
            f"{where}: {'/'.join(map(str, error.absolute_path)) or '(body)'}: {error.message}"
            for error in validator.iter_errors(instance)
        ]
        document = {"components": op.components}
        return problems + [f"{where}: {p}" for p in unknown_properties(op.body_schema, instance, document, "")]


def _properties(schema: Json, document: Json) -> tuple[dict[str, list[Json]], bool]:
    """The properties a schema declares (through allOf/anyOf/oneOf) and whether it allows others."""
    schema = _resolve(schema, document)
    declared: dict[str, list[Json]] = {}
    extra = schema.get("additionalProperties")
    open_ = extra is True or isinstance(extra, dict)
    for name, sub in schema.get("properties", {}).items():
        declared.setdefault(name, []).append(sub)
    for key in ("allOf", "anyOf", "oneOf"):
        for part in schema.get(key, []):
            more, more_open = _properties(part, document)
            open_ = open_ or more_open
            for name, subs in more.items():
                declared.setdefault(name, []).extend(subs)
    return declared, open_


def unknown_properties(schema: Json, instance: object, document: Json, path: str) -> list[str]:
    """Property names in ``instance`` that ``schema`` does not declare, with their paths."""
    schema = _resolve(schema, document)
    if isinstance(instance, list):
        items = schema.get("items")
        if not isinstance(items, dict):
            return []
        return [p for i, item in enumerate(instance) for p in unknown_properties(items, item, document, f"{path}/{i}")]
    if not isinstance(instance, dict):
        return []
    declared, open_ = _properties(schema, document)
    if not declared:
        return []  # a free-form object
    problems: list[str] = []
    for name, value in instance.items():
        where = f"{path}/{name}"
        if name not in declared:
            if not open_:
                problems.append(f"{where}: unknown property {name!r}")
            continue
        # Fine if any of the schemas that declare the property accepts its contents.
        found = [unknown_properties(sub, value, document, where) for sub in declared[name]]
        if all(found):
            problems.extend(found[0])
    return problems
