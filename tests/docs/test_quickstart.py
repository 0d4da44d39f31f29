"""docs/quickstart.md, replayed: every curl command of the page, in order, against the real app.

Each command's method, path, headers and body are read from the page; the status in the comment
that follows it (`# 201 {...}`) must be the one answered, and every plain `"field":value` pair the
comment shows must appear in the response. The tenant's slug is made unique for the run; ids are
the page's own, since the tenant is new.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.conftest import ADMIN_KEY, unique_slug

PAGE = Path(__file__).resolve().parents[2] / "docs" / "quickstart.md"
PAIR = re.compile(r'"(\w+)":("[^"]*"|-?\d+|true|false|null)')
# Fields of the control plane: they differ in a shared test database (other tenants exist).
VARYING = {"id", "slug"}


@dataclass
class Command:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: object = None
    status: int | None = None
    shown: str = ""


def commands(markdown: str) -> list[Command]:
    found: list[Command] = []
    for block in re.findall(r"^```sh\n(.*?)^```$", markdown, re.DOTALL | re.MULTILINE):
        for line in block.replace("\\\n", " ").splitlines():
            if line.startswith("curl "):
                found.append(_parse(shlex.split(line)))
            elif line.startswith("# ") and found and found[-1].status is None:
                status, _, shown = line[2:].partition(" ")
                found[-1].status, found[-1].shown = int(status), shown
    return found


def _parse(words: list[str]) -> Command:
    command = Command(method="GET", path="")
    rest = iter(words[1:])
    for word in rest:
        if word == "-X":
            command.method = next(rest)
        elif word == "-H":
            name, _, value = next(rest).partition(": ")
            command.headers[name] = value
        elif word == "-d":
            command.body = json.loads(next(rest))
            command.method = "POST" if command.method == "GET" else command.method
        elif word.startswith("$BASE"):
            command.path = word.removeprefix("$BASE")
    return command


def _pairs(value: object) -> set[tuple[str, str]]:
    """Every (key, JSON scalar) pair anywhere in ``value``."""
    if isinstance(value, dict):
        found = set()
        for key, item in value.items():
            if isinstance(item, dict | list):
                found |= _pairs(item)
            else:
                found.add((key, json.dumps(item, separators=(",", ":"))))
        return found
    if isinstance(value, list):
        return set().union(*(_pairs(item) for item in value)) if value else set()
    return set()


async def test_every_command_of_the_quickstart_answers_as_the_page_says(client: AsyncTestClient[Litestar]) -> None:
    markdown = PAGE.read_text()
    steps = commands(markdown)
    assert len(steps) >= 15, "the quickstart lost its commands"
    slug = unique_slug("acme")
    keys = {"$ADMIN": ADMIN_KEY}
    for step in steps:
        assert step.status is not None, f"{step.method} {step.path}: no '# <status>' comment after it"
        headers = dict(step.headers)
        if "Authorization" in headers:
            bearer = headers["Authorization"].removeprefix("Bearer ")
            headers["Authorization"] = f"Bearer {keys[bearer]}"
        body = json.loads(json.dumps(step.body).replace('"acme"', json.dumps(slug)))
        response = await client.request(step.method, step.path, headers=headers, json=body)
        where = f"{step.method} {step.path}"
        assert response.status_code == step.status, (where, response.text)
        answered = _pairs(response.json()) if response.content else set()
        for key, value in PAIR.findall(step.shown):
            # Ids of control-schema rows (tenants, keys, provider accounts) depend on what ran before.
            if key in VARYING and step.path.startswith(("/v1/admin", "/v1/tenant", "/v1/provider-accounts")):
                continue
            if key == "slug" or "..." in value:
                continue
            assert (key, value) in answered, (where, key, value, response.text)
        if step.path == "/v1/admin/tenants" and step.method == "POST":
            keys["$ACME"] = response.json()["api_key"]["key"]
