"""One settings object: environment first, then .streamlit/secrets.toml, then demo defaults."""

from __future__ import annotations

import pytest

from hub.security.alarms import thresholds_from
from hub.settings import DEMO_SM4_KEY, load_settings


def test_defaults_are_the_demo_store_and_flagged(tmp_path):
    s = load_settings({}, tmp_path / "missing.toml")
    assert s.database_url.startswith("sqlite:///") and s.database_url.endswith("data/hub.db")
    assert s.sm4_key_hex == DEMO_SM4_KEY and not s.is_production
    assert s.demo_defaults_in_use() == ["HUB_SM4_KEY", "HUB_BLIND_INDEX_KEY"]


def test_environment_wins_over_secrets_file(tmp_path):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(
        'HUB_DATABASE_URL = "postgresql://from-file/db"\nHUB_MAP_STYLE = "http://tiles.lan/style.json"\n'
        "HUB_ALARM_BURST_COUNT = 40\n",
        encoding="utf-8",
    )
    s = load_settings(
        {"HUB_DATABASE_URL": "postgresql://from-env/db", "HUB_ALARM_BURST_COUNT": "50"}, secrets
    )
    assert s.database_url == "postgresql://from-env/db"
    assert s.map_style == "http://tiles.lan/style.json"
    assert thresholds_from(s).burst_count == 50


def test_alarm_thresholds_from_settings(tmp_path):
    s = load_settings(
        {"HUB_ALARM_OFF_HOURS_START": "23", "HUB_ALARM_EXPORT_ROWS": "100"}, tmp_path / "x"
    )
    th = thresholds_from(s)
    assert (th.off_hours_start, th.export_rows, th.burst_count) == (23, 100, 30)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"HUB_ALARM_BURST_COUNT": "many"}, "whole number"),
        ({"HUB_ALARM_NOPE": "3"}, "HUB_ALARM_NOPE"),
    ],
)
def test_bad_alarm_settings_are_named(tmp_path, env, message):
    with pytest.raises(ValueError, match=message):
        thresholds_from(load_settings(env, tmp_path / "x"))


def test_alert_escalation_delay_is_a_setting(tmp_path):
    assert load_settings({}, tmp_path / "x").alert_escalate_minutes == 30
    s = load_settings({"HUB_ALERT_ESCALATE_MINUTES": "7.5"}, tmp_path / "x")
    assert s.alert_escalate_minutes == 7.5


@pytest.mark.parametrize("raw", ["0", "-5", "soon", "nan", "inf"])
def test_a_bad_escalation_delay_is_refused_by_name(tmp_path, raw):
    with pytest.raises(ValueError, match="HUB_ALERT_ESCALATE_MINUTES"):
        load_settings({"HUB_ALERT_ESCALATE_MINUTES": raw}, tmp_path / "x")
