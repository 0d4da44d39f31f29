"""Every hook, adapter method and public name of the plugin API is documented in docs/."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import billplane.plugins
from billplane.plugins import ProviderAdapter, hookspecs

DOCS = Path(__file__).resolve().parents[2] / "docs"
_CODE_SPAN = re.compile(r"`([^`\n]+)`")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def documented_names(markdown: str) -> set[str]:
    """Identifiers that open a heading's words or a code span: `name`, `name(...)`, ### `name()`."""
    names: set[str] = set()
    for line in markdown.splitlines():
        if line.startswith("#"):
            names.update(_IDENTIFIER.findall(_CODE_SPAN.sub(" ", line)))  # spans: below
    for span in _CODE_SPAN.findall(markdown):
        if match := _IDENTIFIER.match(span.strip()):
            names.add(match[0])
    return names


@pytest.fixture(scope="module")
def documented() -> set[str]:
    return set().union(*(documented_names(page.read_text()) for page in DOCS.rglob("*.md")))


def hook_names() -> list[str]:
    return [name for name, value in vars(hookspecs).items() if hasattr(value, f"{hookspecs.PROJECT}_spec")]


def adapter_methods() -> list[str]:
    return [name for name, value in vars(ProviderAdapter).items() if inspect.isfunction(value) and name[0] != "_"]


def test_the_lists_are_not_empty() -> None:
    assert hook_names() == ["billplane_register_providers"]
    assert "parse_webhook" in adapter_methods()
    assert len(adapter_methods()) == 15


@pytest.mark.parametrize("name", hook_names())
def test_every_hook_is_documented(documented: set[str], name: str) -> None:
    assert name in documented, f"hook {name} has no heading or code span in docs/ (docs/plugins/hooks.md)"


@pytest.mark.parametrize("name", adapter_methods())
def test_every_adapter_method_is_documented(documented: set[str], name: str) -> None:
    assert name in documented, f"ProviderAdapter.{name} has no heading or code span in docs/ (docs/plugins/contract.md)"


@pytest.mark.parametrize("name", billplane.plugins.__all__)
def test_every_public_name_is_documented(documented: set[str], name: str) -> None:
    assert name in documented, f"billplane.plugins.{name} has no heading or code span in docs/"


def test_the_scanner_sees_headings_and_code_spans_only() -> None:
    page = "### `ensure_price(price, *, idempotency_key)`\n\nCall `charge()` or `refund`; not charged.\n## Hooks\n"
    assert {"ensure_price", "charge", "refund", "Hooks"} <= documented_names(page)
    assert "not" not in documented_names(page)
    assert "price" not in documented_names(page)  # an argument inside the span is not a documented name
