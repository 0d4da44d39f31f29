"""The generated API reference covers the whole OpenAPI document of the real app.

Every operation has a section on its tag's page (method, path, operation id, each parameter and
its request example), every schema a section on the schemas page, and every schema link points at
a section that exists.
"""

from __future__ import annotations

import json
import re

import pytest

from billplane.docsgen.openapi_pages import SCHEMAS_PAGE, anchor, openapi_document, operations, pages, tag_slug


@pytest.fixture(scope="module")
def document() -> dict[str, object]:
    return openapi_document()


@pytest.fixture(scope="module")
def reference(document: dict[str, object]) -> dict[str, str]:
    return pages(document)


def test_every_operation_has_its_section(document: dict[str, object], reference: dict[str, str]) -> None:
    found = operations(document)
    assert len(found) >= 50  # the whole API, not a sample
    for operation in found:
        page = reference[f"{tag_slug(operation.tag)}.md"]
        heading = f"## `{operation.method.upper()} {operation.path}` {{ #{anchor(operation.operation_id)} }}"
        assert heading in page, heading
        section = page.split(heading, 1)[1].split("\n## ", 1)[0]
        assert operation.spec["description"].splitlines()[0] in section, operation.operation_id
        for parameter in operation.spec.get("parameters", []):
            assert f"| `{parameter['name']}` | {parameter['in']} |" in section, (operation.operation_id, parameter)
        body = operation.spec.get("requestBody")
        if body:
            example = body["content"]["application/json"]["schema"]["examples"][0]
            assert json.dumps(example, indent=2) in section, operation.operation_id
        assert "tenant API key" in section or "operator key" in section or "key: none" in section


def test_every_schema_and_field_is_described(document: dict[str, object], reference: dict[str, str]) -> None:
    schemas = document["components"]["schemas"]  # type: ignore[index]
    page = reference[SCHEMAS_PAGE]
    for name, schema in schemas.items():
        assert f"{{ #{anchor(name)} }}" in page, name
        section = page.split(f"{{ #{anchor(name)} }}", 1)[1].split("\n## ", 1)[0]
        for field in schema.get("properties", {}):
            assert f"| `{field}` |" in section, (name, field)


def test_every_schema_link_has_a_target(reference: dict[str, str]) -> None:
    targets = set(re.findall(r"\{ #([A-Za-z0-9_-]+) \}", reference[SCHEMAS_PAGE]))
    links = {
        target
        for markdown in reference.values()
        for target in re.findall(rf"\]\((?:{re.escape(SCHEMAS_PAGE)})?#([A-Za-z0-9_-]+)\)", markdown)
    }
    assert len(links) >= 20
    assert not links - targets, sorted(links - targets)


def test_the_index_links_every_tag_page(reference: dict[str, str]) -> None:
    index = reference["index.md"]
    for name in reference:
        if name != "index.md":
            assert f"]({name}" in index, name
