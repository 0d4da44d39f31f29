"""The configuration reference documents every environment variable billplane reads.

Variables come from `billplane.settings.ENVIRONMENT`, from every `BILLPLANE_*` name in the source
(platform, tenants, providers, migrations, deploy) and from the option keys each provider plugin
reads (`options.get("timeout")` in providers/stripe is `BILLPLANE_PROVIDER_STRIPE_TIMEOUT`). A new
variable without a description in billplane.docsgen.configuration fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

from billplane.docsgen import configuration
from billplane.docsgen.configuration import VARIABLES, documentation, render, settings_default
from billplane.settings import ENVIRONMENT

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("platform", "tenants", "providers", "migrations", "deploy")
NAME = re.compile(r"\bBILLPLANE_[A-Z0-9_]*[A-Z0-9]\b")
OPTION = re.compile(r"""options(?:\.get\(|\[)\s*["']([a-z0-9_]+)["']""")


def _source_files() -> list[Path]:
    files = []
    for root in SOURCES:
        folder = REPO / root
        if folder.is_dir():
            files += [
                path
                for path in folder.rglob("*")
                if path.is_file() and path.suffix in {".py", ".yaml", ".yml", ".toml", ".md", ".env", ""}
            ]
    return [path for path in files if ".venv" not in path.parts and "__pycache__" not in path.parts]


def names_in_source() -> set[str]:
    found: set[str] = set()
    for path in _source_files():
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        found |= set(NAME.findall(text))
    # A prefix such as "BILLPLANE_PROVIDER_" written before a placeholder is not a variable.
    return {name for name in found if name != "BILLPLANE_PROVIDER"}


def provider_options() -> set[str]:
    found = set()
    for package in (REPO / "providers").iterdir():
        for path in package.rglob("*.py"):
            if "tests" in path.parts:
                continue
            for key in OPTION.findall(path.read_text()):
                found.add(f"BILLPLANE_PROVIDER_{package.name.upper()}_{key.upper()}")
    return found


def test_every_settings_variable_is_documented_with_its_default() -> None:
    missing = [name for name in ENVIRONMENT if documentation(name) is None]
    assert not missing, f"add a description to billplane.docsgen.configuration for {missing}"
    for name in ENVIRONMENT:
        assert settings_default(name)  # the struct field behind every variable exists


def test_every_variable_the_code_reads_is_documented() -> None:
    names = names_in_source()
    assert {"BILLPLANE_DATABASE_URL", "BILLPLANE_HOME", "BILLPLANE_PROVIDER_STRIPE_TIMEOUT"} <= names
    missing = sorted(name for name in names if documentation(name) is None)
    assert not missing, f"add a description to billplane.docsgen.configuration for {missing}"


def test_every_provider_option_has_its_own_entry() -> None:
    """The pattern entry covers any option, but each built-in one deserves its own description."""
    options = provider_options()
    assert "BILLPLANE_PROVIDER_PAYPAL_TIMEOUT" in options
    missing = sorted(name for name in options if name not in {variable.name for variable in VARIABLES})
    assert not missing, f"describe these provider options in billplane.docsgen.configuration: {missing}"


def test_an_undocumented_name_is_reported() -> None:
    assert documentation("BILLPLANE_NOT_A_SETTING") is None
    assert documentation("BILLPLANE_PROVIDER_EXAMPLE_API_BASE") is not None  # the pattern entry


def test_the_rendered_reference_lists_each_variable_once_with_the_code_defaults() -> None:
    page = render()
    for variable in VARIABLES:
        assert page.count(f"| `{variable.name}` |") == 1, variable.name
    assert "| `BILLPLANE_PORT` | `8000` |" in page
    assert "| `BILLPLANE_DB_POOL_SIZE` | `10` |" in page
    assert set(configuration.SECTIONS.values()) <= {line.removeprefix("## ") for line in page.splitlines()}
