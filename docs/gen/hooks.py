"""mkdocs hooks: the pages generated from the code at build time (see mkdocs.yml).

- `api/`: the API reference, one page per OpenAPI tag plus the schemas (billplane.docsgen.openapi_pages).
  The pages join the nav after `api/index.md`, so a new tag needs no edit of mkdocs.yml.
- `adr/`: every `adr/NNNN-*.md` joins the nav after `adr/index.md`, whose marker becomes the list of
  decisions with their status, so adding an ADR is adding its file.
- `operations/configuration.md`: the marker below is replaced by the reference tables
  (billplane.docsgen.configuration).

Pages link to source files of the repository (`../../bench/x.py`), which work where the Markdown is
read in the repository but are outside the site: such a link becomes its text when the file exists,
and stays (so --strict fails the build) when it does not.

Nothing generated is committed, so nothing generated can be stale.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

# The same advanced-alchemy import warning the test suite ignores (pyproject.toml): nothing to fix here.
warnings.filterwarnings("ignore", message="The declarative_mixin decorator")

from billplane.docsgen import configuration, openapi_pages  # noqa: E402 - after the warning filter

API_DIR = "api"
CONFIGURATION_PAGE = "operations/configuration.md"
CONFIGURATION_MARKER = "<!-- generated: configuration reference -->"
ADR_INDEX = "adr/index.md"
ADR_MARKER = "<!-- generated: decisions -->"
ADR_FILE = re.compile(r"^\d{4}-.+\.md$")

_pages: dict[str, str] = {}


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    _pages.clear()
    _pages.update(openapi_pages.pages(openapi_pages.openapi_document()))
    index = f"{API_DIR}/index.md"
    section = _section_holding(config.nav or [], index)
    if section is None:
        raise ValueError(f"mkdocs.yml: the nav has no section holding {index}")
    section.extend({_title(markdown): f"{API_DIR}/{name}"} for name, markdown in _pages.items() if name != "index.md")
    decisions = _section_holding(config.nav or [], ADR_INDEX)
    if decisions is None:
        raise ValueError(f"mkdocs.yml: the nav has no section holding {ADR_INDEX}")
    decisions.extend({_title(path.read_text()): f"adr/{path.name}"} for path in _adr_files(config))
    return config


def on_files(files: Files, config: MkDocsConfig) -> Files:
    for name, markdown in _pages.items():
        files.append(File.generated(config, f"{API_DIR}/{name}", content=markdown))
    return files


# mkdocs passes the event's arguments by keyword, so `files` keeps its name though unused.
def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:  # noqa: ARG001
    markdown = unlink_repository_files(markdown, page.file.src_uri, Path(config.docs_dir))
    if page.file.src_uri == CONFIGURATION_PAGE:
        return _replace_marker(markdown, CONFIGURATION_MARKER, configuration.render(), page)
    if page.file.src_uri == ADR_INDEX:
        return _replace_marker(markdown, ADR_MARKER, _adr_table(config), page)
    return markdown


def _replace_marker(markdown: str, marker: str, content: str, page: Page) -> str:
    if marker not in markdown:
        raise ValueError(f"{page.file.src_uri} lost its marker {marker!r}")
    return markdown.replace(marker, content)


def _adr_files(config: MkDocsConfig) -> list[Path]:
    return sorted(path for path in (Path(config.docs_dir) / "adr").iterdir() if ADR_FILE.match(path.name))


def _adr_table(config: MkDocsConfig) -> str:
    rows = ["| decision | status | date |", "| --- | --- | --- |"]
    for path in _adr_files(config):
        text = path.read_text()
        fields = dict(re.findall(r"^- (Status|Date): (.+)$", text, re.MULTILINE))
        rows.append(f"| [{_title(text)}]({path.name}) | {fields.get('Status', '')} | {fields.get('Date', '')} |")
    return "\n".join(rows)


def _section_holding(nav: list[Any], path: str) -> list[Any] | None:
    """The nav list that names ``path`` directly (an entry `path` or `{title: path}`)."""
    for entry in nav:
        if entry == path or (isinstance(entry, dict) and path in entry.values()):
            return nav
        children = entry.values() if isinstance(entry, dict) else []
        for child in children:
            if isinstance(child, list) and (found := _section_holding(child, path)) is not None:
                return found
    return None


def _title(markdown: str) -> str:
    first = markdown.splitlines()[0]
    return first.removeprefix("# ").strip()


_LINK = re.compile(r"\[(?P<text>[^\]]+)\]\((?P<target>[^)\s#]+)(?:#[^)\s]*)?\)")


def unlink_repository_files(markdown: str, page_uri: str, docs_dir: Path) -> str:
    """``markdown`` with links to existing repository files outside ``docs_dir`` replaced by their text."""
    docs_dir = docs_dir.resolve()
    repository = docs_dir.parent
    page_dir = (docs_dir / page_uri).parent

    def replace(match: re.Match[str]) -> str:
        target = match["target"]
        if "://" in target or target.startswith(("/", "mailto:")):
            return match[0]
        resolved = (page_dir / target).resolve()
        outside_docs = not resolved.is_relative_to(docs_dir)
        if outside_docs and resolved.is_relative_to(repository) and resolved.exists():
            return match["text"]
        return match[0]

    return _LINK.sub(replace, markdown)
