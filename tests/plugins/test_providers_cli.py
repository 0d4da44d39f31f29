"""`billplane providers list`: no database, no secrets, only installed plugins and the allowlist."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from billplane.cli.main import cli


@pytest.fixture(autouse=True)
def bare_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BILLPLANE_DATABASE_URL", "BILLPLANE_SECRET_KEY", "BILLPLANE_ADMIN_KEY", "BILLPLANE_PROVIDERS"):
        monkeypatch.delenv(name, raising=False)


def test_the_sandbox_is_listed_with_what_it_can_do() -> None:
    result = CliRunner().invoke(cli, ["providers", "list"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("sandbox "))  # providers sort by name
    assert lines[at].startswith("sandbox 0.1.0: ")
    assert lines[at + 1].split() == [
        "capabilities:",
        "customers,",
        "catalog,",
        "subscriptions,",
        "pause,",
        "charges,",
        "refunds,",
        "webhooks,",
        "payment_lookup,",
        "payment_status,",
        "refund_status,",
        "refund_lookup,",
        "undo_cancel,",
        "payment_methods,",
        "catalog_updates,",
        "subscription_metadata",
    ]
    assert lines[at + 2] == "  pricing models: flat, per_seat, tiered, volume, package, metered"
    assert any(line.startswith("stripe ") for line in lines)
    assert any(line.startswith("paypal ") for line in lines)


def test_json_output() -> None:
    result = CliRunner().invoke(cli, ["providers", "list", "--json"], catch_exceptions=False)
    [sandbox] = [entry for entry in json.loads(result.output) if entry["name"] == "sandbox"]
    assert sandbox["version"] == "0.1.0"
    assert "refunds" in sandbox["capabilities"]
    assert "metered" in sandbox["pricing_models"]


def test_the_allowlist_hides_the_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BILLPLANE_PROVIDERS", "x")
    result = CliRunner().invoke(cli, ["providers", "list"], catch_exceptions=False)
    assert result.exit_code == 0
    assert "sandbox" not in result.stdout
    assert "no provider is installed and allowed" in result.stdout
    assert "BILLPLANE_PROVIDERS names 'x', which is not installed" in result.stderr


def test_the_allowlist_may_name_the_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BILLPLANE_PROVIDERS", " sandbox , ")
    result = CliRunner().invoke(cli, ["providers", "list", "--json"], catch_exceptions=False)
    assert [entry["name"] for entry in json.loads(result.stdout)] == ["sandbox"]
    assert result.stderr == ""
