"""Operator settings from the environment: typed, and bad values named with what is allowed."""

from __future__ import annotations

import pytest

from inference_operator.__main__ import main
from inference_operator.settings import SettingsError, load_settings


def test_defaults_and_overrides() -> None:
    assert load_settings({}).resync_seconds == 60
    s = load_settings({"INFOP_RESYNC_SECONDS": "5", "INFOP_NAMESPACE": "team-a"})
    assert (s.resync_seconds, s.namespace) == (5, "team-a")


def test_bad_value_names_the_variable() -> None:
    with pytest.raises(SettingsError, match=r"INFOP_RESYNC_SECONDS='-1': Input should be greater"):
        load_settings({"INFOP_RESYNC_SECONDS": "-1"})


def test_operator_refuses_to_start_on_bad_settings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("INFOP_LOG_FORMAT", "xml")
    assert main(["run"]) == 2
    assert "INFOP_LOG_FORMAT='xml'" in capsys.readouterr().err


def test_tls_without_the_trigger_authentication_is_refused_naming_both() -> None:
    with pytest.raises(SettingsError) as e:
        load_settings(
            {"INFOP_SCALER_TLS_DIR": "/tls", "INFOP_SCALER_ADDRESS": "op.system.svc:6000"}
        )
    assert "scaler_tls_dir" in str(e.value) and "scaler_trigger_auth" in str(e.value)
