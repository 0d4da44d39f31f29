"""Settings are validated at start, every problem listed, secrets never shown."""

from __future__ import annotations

from datetime import timedelta

import pytest

from billplane.settings import PendingChecks, SettingsError, load_settings

GOOD = {
    "BILLPLANE_DATABASE_URL": "postgres://u:p@db:5432/billing",
    "BILLPLANE_ADMIN_KEY": "a" * 40,
    "BILLPLANE_SECRET_KEY": "s" * 40,
}


def test_valid_environment() -> None:
    settings = load_settings(GOOD | {"BILLPLANE_PORT": "9000", "BILLPLANE_WORKERS": "2"})
    assert settings.database.url == "postgresql+asyncpg://u:p@db:5432/billing"
    assert (settings.server.port, settings.server.workers) == (9000, 2)
    assert "a" * 40 not in repr(settings)
    assert "s" * 40 not in repr(settings)


def test_every_problem_is_listed() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"BILLPLANE_ADMIN_KEY": "short", "BILLPLANE_PORT": "http"})
    message = str(caught.value)
    for expected in ["BILLPLANE_DATABASE_URL is not set", "BILLPLANE_SECRET_KEY is not set", "at least 32", "PORT"]:
        assert expected in message
    assert "short" not in message


def test_admin_key_is_needed_only_to_serve() -> None:
    without_admin = {key: value for key, value in GOOD.items() if key != "BILLPLANE_ADMIN_KEY"}
    with pytest.raises(SettingsError, match="BILLPLANE_ADMIN_KEY"):
        load_settings(without_admin)
    assert load_settings(without_admin, serving=False).security.admin_key is None


def test_non_postgres_urls_are_refused() -> None:
    with pytest.raises(SettingsError, match="PostgreSQL"):
        load_settings(GOOD | {"BILLPLANE_DATABASE_URL": "mysql://u@h/db"})


def test_pending_charge_checks_have_defaults_and_are_read() -> None:
    assert load_settings(GOOD).providers.payment_pending_checks == PendingChecks(
        every=timedelta(hours=1), flag_after=timedelta(days=5)
    )
    tuned = load_settings(
        GOOD | {"BILLPLANE_PAYMENT_PENDING_CHECK_MINUTES": "15", "BILLPLANE_PAYMENT_PENDING_FLAG_HOURS": "48"}
    )
    assert tuned.providers.payment_pending_checks == PendingChecks(
        every=timedelta(minutes=15), flag_after=timedelta(hours=48)
    )


def test_durations_have_defaults_and_bounds() -> None:
    settings = load_settings(GOOD)
    assert (settings.providers.incomplete_expiry_hours, settings.providers.payment_reconcile_after_minutes) == (
        23.0,
        10.0,
    )
    tuned = load_settings(
        GOOD | {"BILLPLANE_INCOMPLETE_EXPIRY_HOURS": "0.5", "BILLPLANE_PAYMENT_RECONCILE_AFTER_MINUTES": "1"}
    )
    assert (tuned.providers.incomplete_expiry_hours, tuned.providers.payment_reconcile_after.total_seconds()) == (
        0.5,
        60.0,
    )
    for name, bad in [
        ("BILLPLANE_INCOMPLETE_EXPIRY_HOURS", "0"),
        ("BILLPLANE_INCOMPLETE_EXPIRY_HOURS", "nan"),
        ("BILLPLANE_PAYMENT_RECONCILE_AFTER_MINUTES", "0.5"),
        ("BILLPLANE_PAYMENT_RECONCILE_AFTER_MINUTES", "nan"),
        ("BILLPLANE_PAYMENT_RECONCILE_AFTER_MINUTES", "soon"),
        ("BILLPLANE_PAYMENT_PENDING_CHECK_MINUTES", "0.5"),
        ("BILLPLANE_PAYMENT_PENDING_FLAG_HOURS", "0"),
        ("BILLPLANE_PAYMENT_PENDING_FLAG_HOURS", "nan"),
    ]:
        with pytest.raises(SettingsError) as caught:
            load_settings(GOOD | {name: bad})
        assert name in str(caught.value), (name, bad)


def test_the_listening_connections_have_a_url_of_their_own_or_the_databases() -> None:
    assert load_settings(GOOD).database.listening_url == "postgresql+asyncpg://u:p@db:5432/billing"
    direct = load_settings(GOOD | {"BILLPLANE_DATABASE_LISTEN_URL": "postgres://u:q@db-direct:5432/billing"})
    assert direct.database.listening_url == "postgresql+asyncpg://u:q@db-direct:5432/billing"
    assert direct.database.url == "postgresql+asyncpg://u:p@db:5432/billing"
    with pytest.raises(SettingsError, match="PostgreSQL"):
        load_settings(GOOD | {"BILLPLANE_DATABASE_LISTEN_URL": "mysql://u@h/db"})
