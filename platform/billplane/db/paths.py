"""Where the alembic tracks live: in a wheel under ``billplane/_migrations``, else the repo root."""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent.parent


def migrations_dir() -> Path:
    packaged = _PACKAGE_DIR / "_migrations"
    if packaged.is_dir():
        return packaged
    return _PACKAGE_DIR.parent.parent / "migrations"


def control_scripts() -> Path:
    return migrations_dir() / "control"


def tenant_scripts() -> Path:
    return migrations_dir() / "tenant"
