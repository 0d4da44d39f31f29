"""`platform/` is only a source root: it must never shadow the standard library's `platform`."""

from __future__ import annotations

import platform
import subprocess
import sys
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_import_platform_is_the_standard_library() -> None:
    stdlib = Path(sysconfig.get_paths()["stdlib"]).resolve()
    assert Path(platform.__file__).resolve().parent == stdlib
    assert callable(platform.python_version)


def test_platform_folder_holds_no_python_files_directly() -> None:
    assert not list((REPO / "platform").glob("*.py"))


def test_import_platform_from_the_repo_root_in_a_fresh_interpreter() -> None:
    # The repo root and platform/ on sys.path, as an editable install and `python -c` from the root have.
    code = "import sys; sys.path[:0] = ['', 'platform']; import platform; print(platform.__file__)"
    result = subprocess.run(  # noqa: S603 - fixed argv, our own interpreter
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    stdlib = Path(sysconfig.get_paths()["stdlib"]).resolve()
    assert Path(result.stdout.strip()).resolve().parent == stdlib
