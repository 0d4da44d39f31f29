"""Links outside the site build: the README's links into docs/, and the hook that turns links to
repository source files into text on the site (and leaves broken ones for --strict to catch)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")


def _hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_hooks", REPO / "docs" / "gen" / "hooks.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_relative_link_of_the_readme_names_a_file() -> None:
    targets = [target for target in LINK.findall((REPO / "README.md").read_text()) if "://" not in target]
    assert len(targets) >= 10
    missing = [target for target in targets if not (REPO / target).exists()]
    assert not missing, missing


def test_links_to_existing_source_files_become_text_and_broken_ones_stay() -> None:
    unlink = _hooks().unlink_repository_files
    docs = REPO / "docs"
    page = "adr/0001-tenant-scoping.md"
    markdown = (
        "See [`bench/tenancy_scoping.py`](../../bench/tenancy_scoping.py), "
        "[gone](../../bench/no_such_file.py), [a page](0002-embedded-postgres.md) "
        "and [the web](https://example.com/x.py)."
    )
    assert unlink(markdown, page, docs) == (
        "See `bench/tenancy_scoping.py`, [gone](../../bench/no_such_file.py), "
        "[a page](0002-embedded-postgres.md) and [the web](https://example.com/x.py)."
    )
