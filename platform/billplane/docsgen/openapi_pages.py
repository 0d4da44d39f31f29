"""Markdown pages of the API reference, rendered from the app's OpenAPI document.

One page per tag (each operation with its parameters, request body, example and responses) and one
page of schemas that the operations link to. Only the document is read, so what the site says is
what `/schema/openapi.json` serves.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from litestar import Litestar

from billplane.settings import DatabaseSettings, SecuritySettings, Settings

Schema = Mapping[str, Any]
METHODS = ("get", "post", "put", "patch", "delete")
SCHEMAS_PAGE = "schemas.md"
# Where the hand-written conventions live, relative to a generated page (api/<tag>.md).
CONVENTIONS = "../reference/api.md"
SECURITY = {
    "apiKey": "tenant API key (`Authorization: Bearer <key>`)",
    "adminKey": "operator key (`Authorization: Bearer $BILLPLANE_ADMIN_KEY`)",
}


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    spec: Schema

    @property
    def operation_id(self) -> str:
        return str(self.spec["operationId"])

    @property
    def tag(self) -> str:
        tags = self.spec.get("tags") or ["other"]
        return str(tags[0])


def openapi_document(app: Litestar | None = None) -> dict[str, Any]:
    """The app's OpenAPI document. Without an app, one is built with placeholder settings: nothing
    connects to a database until the app starts, and the document does not depend on settings."""
    if app is None:
        from billplane.app import create_app  # noqa: PLC0415 - the app imports every domain: only when asked

        app = create_app(
            Settings(
                database=DatabaseSettings(url="postgresql+asyncpg://docs@127.0.0.1:5432/docs"),
                security=SecuritySettings(secret_key="docs-build-placeholder-" + "x" * 32),
            )
        )
    document: dict[str, Any] = app.openapi_schema.to_schema()
    return document


def operations(document: Schema) -> list[Operation]:
    found = [
        Operation(method, path, spec)
        for path, methods in document["paths"].items()
        for method, spec in methods.items()
        if method in METHODS
    ]
    return sorted(found, key=lambda op: (op.path, METHODS.index(op.method)))


def tag_slug(tag: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", tag.lower()).strip("-")


def anchor(name: str) -> str:
    """A heading id for a schema or operation: letters, digits, `-` and `_` only."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")


def pages(document: Schema) -> dict[str, str]:
    """Every page of the reference: ``{file name: Markdown}``, `index.md` first, tags by name, schemas last."""
    by_tag: dict[str, list[Operation]] = {}
    for operation in operations(document):
        by_tag.setdefault(operation.tag, []).append(operation)
    result = {"index.md": _index(document, by_tag)}
    for tag in sorted(by_tag):
        result[f"{tag_slug(tag)}.md"] = _tag_page(tag, by_tag[tag], document)
    result[SCHEMAS_PAGE] = _schemas_page(document)
    return result


def _index(document: Schema, by_tag: Mapping[str, list[Operation]]) -> str:
    info = document["info"]
    lines = [
        "# API reference",
        "",
        f"Generated from the OpenAPI document of billplane {info['version']} (the one the app serves at",
        "`/schema/openapi.json`, with an interactive page at `/schema`). Authentication, errors,",
        f"pagination and idempotency are described once in [API conventions]({CONVENTIONS}).",
        "",
        "| group | operations |",
        "| --- | --- |",
    ]
    for tag in sorted(by_tag):
        names = ", ".join(
            f"[`{op.method.upper()} {op.path}`]({tag_slug(tag)}.md#{anchor(op.operation_id)})" for op in by_tag[tag]
        )
        lines.append(f"| [{tag}]({tag_slug(tag)}.md) | {names} |")
    lines += ["", f"Every request and response body is described in [schemas]({SCHEMAS_PAGE}).", ""]
    return "\n".join(lines)


def _tag_page(tag: str, group: list[Operation], document: Schema) -> str:
    lines = [f"# {tag[:1].upper()}{tag[1:]}", ""]
    for operation in group:
        lines += _operation(operation, document)
    return "\n".join(lines)


def _operation(operation: Operation, document: Schema) -> list[str]:
    spec = operation.spec
    lines = [
        f"## `{operation.method.upper()} {operation.path}` {{ #{anchor(operation.operation_id)} }}",
        "",
        f"`{operation.operation_id}` · key: {_security(spec, document)}",
        "",
        str(spec.get("description") or spec.get("summary") or ""),
        "",
    ]
    parameters = spec.get("parameters") or []
    if parameters:
        lines += ["| parameter | in | type | required | description |", "| --- | --- | --- | --- | --- |"]
        for parameter in parameters:
            schema = parameter.get("schema") or {}
            description = parameter.get("description") or schema.get("description") or ""
            lines.append(
                f"| `{parameter['name']}` | {parameter['in']} | {_cell(type_text(schema))} | "
                f"{'yes' if parameter.get('required') else 'no'} | {_cell(_with_constraints(description, schema))} |"
            )
        lines.append("")
    body = spec.get("requestBody")
    if body:
        lines += _request_body(body)
    lines += _responses(spec.get("responses") or {})
    return lines


def _security(spec: Schema, document: Schema) -> str:
    requirements = spec.get("security", document.get("security")) or []
    names = [name for requirement in requirements for name in requirement]
    return ", ".join(SECURITY.get(name, f"`{name}`") for name in names) or "none"


def _request_body(body: Schema) -> list[str]:
    lines = []
    optional = "" if body.get("required", False) else ", optional: left out, the defaults"
    for media_type, content in (body.get("content") or {}).items():
        schema = content.get("schema") or {}
        lines += [f"**Request body** (`{media_type}`{optional}): {type_text(schema)}", ""]
        examples = schema.get("examples") or []
        if examples:
            lines += ["```json", json.dumps(examples[0], indent=2), "```", ""]
    return lines


def _responses(responses: Schema) -> list[str]:
    # Errors included: the document describes each as the problem details the API sends
    # (billplane.api.openapi_problems.document_problems).
    lines = ["| status | meaning | body |", "| --- | --- | --- |"]
    for status, response in sorted(responses.items()):
        content = response.get("content") or {}
        bodies = [f"{type_text(media.get('schema') or {})} (`{kind}`)" for kind, media in content.items()]
        lines.append(f"| {status} | {_cell(response.get('description', ''))} | {_cell(', '.join(bodies) or 'none')} |")
    return [*lines, "", f"Errors are [problem details]({CONVENTIONS}#errors), described there.", ""]


def _schemas_page(document: Schema) -> str:
    lines = [
        "# Schemas",
        "",
        "Every body the API takes or returns, as named in the OpenAPI document. Money is an integer of",
        "minor units with an ISO 4217 `currency`; a JSON number with a fraction is refused.",
        "",
    ]
    for name, schema in sorted(document["components"].get("schemas", {}).items()):
        lines += [f"## {_display(name)} {{ #{anchor(name)} }}", ""]
        if schema.get("description"):
            lines += [str(schema["description"]), ""]
        properties = schema.get("properties") or {}
        required = set(schema.get("required") or [])
        if properties:
            lines += ["| field | type | required | description |", "| --- | --- | --- | --- |"]
            for field, field_schema in properties.items():
                description = _with_constraints(field_schema.get("description") or "", field_schema)
                lines.append(
                    f"| `{field}` | {_cell(type_text(field_schema, schemas_page=True))} | "
                    f"{'yes' if field in required else 'no'} | {_cell(description)} |"
                )
            lines.append("")
        else:
            lines += [f"Type: {type_text(schema, schemas_page=True)}", ""]
        examples = schema.get("examples") or []
        if examples:
            lines += ["```json", json.dumps(examples[0], indent=2), "```", ""]
    return "\n".join(lines)


def _display(name: str) -> str:
    # Litestar names generic structs after their Python path ("Page_billplane.customers.schemas.Customer_").
    match = re.fullmatch(r"(\w+?)_(?:[\w.]+\.)?(\w+)_", name)
    return f"{match.group(1)}[{match.group(2)}]" if match else name


def type_text(schema: Schema, *, schemas_page: bool = False) -> str:
    """A short Markdown rendering of a JSON schema's type, with links to named schemas."""
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        target = "" if schemas_page else SCHEMAS_PAGE
        return f"[{_display(name)}]({target}#{anchor(name)})"
    for combinator, joiner in (("oneOf", " or "), ("anyOf", " or "), ("allOf", " and ")):
        if combinator in schema:
            return joiner.join(_unique(type_text(part, schemas_page=schemas_page) for part in schema[combinator]))
    if "enum" in schema:
        return "one of " + ", ".join(f"`{json.dumps(value)}`" for value in schema["enum"])
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`"
    return _plain_type(schema, schemas_page=schemas_page)


def _plain_type(schema: Schema, *, schemas_page: bool) -> str:
    kinds = schema.get("type")
    if isinstance(kinds, list):
        return " or ".join(_unique(type_text({**schema, "type": kind}, schemas_page=schemas_page) for kind in kinds))
    values = schema.get("additionalProperties")
    if kinds == "array":
        text = f"array of {type_text(schema.get('items') or {}, schemas_page=schemas_page)}"
    elif kinds == "object" and isinstance(values, dict) and values:
        text = f"object of {type_text(values, schemas_page=schemas_page)}"
    else:
        text = "any" if kinds is None else str(kinds)
    return f"{text} ({schema['format']})" if "format" in schema else text


def _unique(items: Iterator[str]) -> list[str]:
    return list(dict.fromkeys(items))


_CONSTRAINTS = (
    ("minimum", "min {}"),
    ("maximum", "max {}"),
    ("minLength", "length >= {}"),
    ("maxLength", "length <= {}"),
    ("minItems", "items >= {}"),
    ("maxItems", "items <= {}"),
    ("pattern", "pattern `{}`"),
    ("default", "default `{}`"),
)


def _with_constraints(description: str, schema: Schema) -> str:
    found = []
    for key, template in _CONSTRAINTS:
        if key in schema:
            value = schema[key]
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            found.append(template.format(json.dumps(value) if key == "default" else value))
    if not found:
        return description
    return f"{description} ({'; '.join(found)})" if description else "; ".join(found)


def _cell(text: str) -> str:
    """Text that stays inside one Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")
