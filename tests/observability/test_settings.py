"""The observability environment variables: parsed, validated with a clear error, never echoing the token."""

from __future__ import annotations

import pytest

from billplane.docsgen.configuration import render
from billplane.settings import ENVIRONMENT, SettingsError, load_settings
from tests.conftest import ADMIN_KEY, SECRET_KEY

BASE = {"BILLPLANE_DATABASE_URL": "postgresql://x@localhost/db", "BILLPLANE_SECRET_KEY": SECRET_KEY}
BASE |= {"BILLPLANE_ADMIN_KEY": ADMIN_KEY}


def test_defaults_and_values() -> None:
    assert load_settings(BASE).observability.log_format is None  # the command decides
    settings = load_settings(
        BASE
        | {
            "BILLPLANE_LOG_FORMAT": "TEXT",
            "BILLPLANE_LOG_LEVEL": "debug",
            "BILLPLANE_METRICS_ENABLED": "off",
            "BILLPLANE_METRICS_TOKEN": "m" * 32,
            "BILLPLANE_METRICS_TENANT_LABELS": "0",
            "BILLPLANE_METRICS_DIR": "/var/run/billplane-metrics",
            "BILLPLANE_WORKER_METRICS_PORT": "9101",
            "BILLPLANE_TRACING": "true",
        }
    ).observability
    assert (settings.log_format, settings.log_level, settings.metrics_enabled) == ("text", "DEBUG", False)
    assert (settings.metrics_token, settings.metrics_tenant_labels, settings.worker_metrics_port) == ("m" * 32, 0, 9101)
    assert (settings.metrics_dir, settings.tracing) == ("/var/run/billplane-metrics", True)
    assert "m" * 32 not in repr(settings)


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("BILLPLANE_LOG_FORMAT", "xml", "BILLPLANE_LOG_FORMAT: must be json or text"),
        ("BILLPLANE_LOG_LEVEL", "LOUD", "BILLPLANE_LOG_LEVEL: must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ("BILLPLANE_METRICS_ENABLED", "maybe", "BILLPLANE_METRICS_ENABLED: must be true or false"),
        ("BILLPLANE_METRICS_TOKEN", "short-secret-token", "BILLPLANE_METRICS_TOKEN: must be at least 32 characters"),
        ("BILLPLANE_METRICS_TENANT_LABELS", "-1", "BILLPLANE_METRICS_TENANT_LABELS: must be 0 or more"),
        ("BILLPLANE_WORKER_METRICS_PORT", "70000", "BILLPLANE_WORKER_METRICS_PORT: must be between 1 and 65535"),
        ("BILLPLANE_TRACING", "2", "BILLPLANE_TRACING: must be true or false"),
    ],
)
def test_bad_values_are_refused_naming_the_variable(name: str, raw: str, message: str) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings(BASE | {name: raw})
    assert message in str(refused.value)
    if name == "BILLPLANE_METRICS_TOKEN":
        assert raw not in str(refused.value)


def test_every_variable_is_in_the_configuration_reference() -> None:
    reference = render()  # the generated configuration reference of the docs site
    observability = [name for name, (group, _) in ENVIRONMENT.items() if group == "observability"]
    assert len(observability) == 8
    for name in observability:
        assert f"`{name}`" in reference, name
