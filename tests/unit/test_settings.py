"""The operator's settings from MODELROLLOUT_* variables: defaults, values, errors."""

from __future__ import annotations

import pytest

from modelrollout.settings import OperatorSettings, SettingsError

pytestmark = pytest.mark.unit


def test_defaults_without_any_variable() -> None:
    settings = OperatorSettings.from_env({})
    assert settings.namespaces == ()
    assert (settings.resync_seconds, settings.peering_lifetime_seconds) == (300.0, 60)
    assert settings.peering_name == "modelrollout" and not settings.standalone
    # Without the peering object, run alone (with a warning) rather than wait forever.
    assert not settings.peering_required


def test_values_from_the_environment() -> None:
    settings = OperatorSettings.from_env(
        {
            "MODELROLLOUT_NAMESPACES": "ml, ml-staging,",
            "MODELROLLOUT_RESYNC_SECONDS": "30",
            "MODELROLLOUT_PEERING_LIFETIME_SECONDS": "15",
            "MODELROLLOUT_PRIORITY": "7",
            "MODELROLLOUT_STANDALONE": "true",
            "MODELROLLOUT_PEERING_REQUIRED": "1",
        }
    )
    assert settings.namespaces == ("ml", "ml-staging")
    assert (settings.resync_seconds, settings.peering_lifetime_seconds) == (30.0, 15)
    assert settings.priority == 7 and settings.standalone and settings.peering_required


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("RESYNC_SECONDS", "soon", "is not a number"),
        ("PEERING_LIFETIME_SECONDS", "0", "must be positive"),
        ("MAX_ERROR_BACKOFF_SECONDS", "-1", "must be positive"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=f"MODELROLLOUT_{name}='{value}' {message}"):
        OperatorSettings.from_env({f"MODELROLLOUT_{name}": value})
