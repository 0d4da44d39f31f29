"""The sandbox is packaged like a third party's: only billplane's public plugin API is imported."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
PUBLIC = {"billplane.plugins", "billplane.plugins.contract", "billplane.plugins.errors"}
PACKAGES = [
    REPO / "providers" / "sandbox" / "billplane_sandbox",
    REPO / "docs" / "examples" / "billplane-example-provider",
]


def billplane_imports(source: str) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
    return {module for module in modules if module == "billplane" or module.startswith("billplane.")}


@pytest.mark.parametrize("package", PACKAGES, ids=lambda path: path.name)
def test_only_the_public_plugin_api_is_imported(package: Path) -> None:
    sources = [path for path in package.rglob("*.py") if "tests" not in path.relative_to(package).parts]
    assert sources
    for path in sources:
        private = billplane_imports(path.read_text()) - PUBLIC
        assert not private, f"{path.relative_to(REPO)} imports {sorted(private)}: use billplane.plugins"


def test_the_check_sees_private_imports() -> None:
    assert billplane_imports("import billplane.db\nfrom billplane.plugins.host import PluginHost\n") == {
        "billplane.db",
        "billplane.plugins.host",
    }


def test_the_distribution_is_typed() -> None:
    assert (REPO / "providers" / "sandbox" / "billplane_sandbox" / "py.typed").is_file()
