"""The default rate limit comes from the environment, validated with the other settings."""

from __future__ import annotations

import pytest

from billplane.settings import SettingsError, load_settings
from tests.platform.test_settings import GOOD


def test_the_default_is_on_and_the_environment_overrides_it() -> None:
    assert (load_settings(GOOD).rate_limit.per_second, load_settings(GOOD).rate_limit.burst) == (100, 200)
    configured = load_settings(GOOD | {"BILLPLANE_RATE_LIMIT_PER_SECOND": "5", "BILLPLANE_RATE_LIMIT_BURST": "7"})
    assert (configured.rate_limit.per_second, configured.rate_limit.burst) == (5, 7)
    assert load_settings(GOOD | {"BILLPLANE_RATE_LIMIT_PER_SECOND": "0"}).rate_limit.per_second == 0  # off


def test_bad_values_are_listed_by_name() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(GOOD | {"BILLPLANE_RATE_LIMIT_PER_SECOND": "-1", "BILLPLANE_RATE_LIMIT_BURST": "0"})
    assert "BILLPLANE_RATE_LIMIT_PER_SECOND must be 0 (unlimited) or more" in str(caught.value)
    assert "BILLPLANE_RATE_LIMIT_BURST must be at least 1" in str(caught.value)
    with pytest.raises(SettingsError, match="BILLPLANE_RATE_LIMIT_BURST"):
        load_settings(GOOD | {"BILLPLANE_RATE_LIMIT_BURST": "lots"})
