"""The example third-party plugin in docs/examples passes the conformance kit, as its own suite runs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "billplane-example-provider"


def test_the_example_declares_its_entry_point() -> None:
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())
    assert project["project"]["entry-points"]["billplane.providers"] == {"example": "billplane_example.plugin"}
    assert (EXAMPLE / "billplane_example" / "plugin.py").is_file()
    assert (EXAMPLE / "billplane_example" / "py.typed").is_file()


def test_the_example_passes_the_kit() -> None:
    # Its own suite, run as its author runs it (`pytest` in its folder, which enables the kit), with
    # the package importable from its source folder instead of installed: no network, no venv.
    environment = {name: value for name, value in os.environ.items() if not name.startswith("PYTEST_")}
    environment |= {"PYTHONPATH": str(EXAMPLE), "PYTHONDONTWRITEBYTECODE": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs"],
        cwd=EXAMPLE,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "billplane.testing: 44 conformance checks collected" in output
    summary = re.search(r"(\d+) passed, (\d+) skipped", output)
    assert summary is not None, output
    assert int(summary[1]) >= 32  # 31 kit checks and its own test
    # Skipped: subscriptions, pause, usage, payment_lookup, payment_status, refund_lookup,
    # refund_status, undo_cancel, payment_methods' attach and detach, catalog_updates and
    # subscription_metadata.
    assert int(summary[2]) == 13
    assert "does not declare the subscriptions capability" in output
