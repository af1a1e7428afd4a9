"""`aistack doctor`'s check of Claude Code's transcript retention (LORE can only archive what still exists)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services import doctor
from services.settings import Settings, load_settings


def _settings(tmp_path: Path, claude_settings: object | None) -> Settings:
    home = tmp_path / "claude"
    home.mkdir(parents=True)
    if claude_settings is not None:
        text = claude_settings if isinstance(claude_settings, str) else json.dumps(claude_settings)
        (home / "settings.json").write_text(text)
    return load_settings(env_file=None, aistack_home=tmp_path / "home", claude_home=home)


@pytest.mark.parametrize("claude_settings", [None, {"hooks": {}}, {"cleanupPeriodDays": None}])
def test_default_retention_warns_that_transcripts_go_after_30_days(tmp_path: Path, claude_settings: object) -> None:
    c = doctor.check_claude_retention(_settings(tmp_path, claude_settings))
    assert c.status == "warn" and c.name == "claude retention"
    assert "deletes transcripts after 30 days" in c.detail and "cleanupPeriodDays not set" in c.detail
    assert '"cleanupPeriodDays": 36500' in c.fix and "settings.json" in c.fix
    assert "import more often" in c.fix and "LORE_IMPORT_TIME 03:00" in c.fix


@pytest.mark.parametrize("days", [365, 36500, 99999])
def test_long_retention_is_ok(tmp_path: Path, days: int) -> None:
    c = doctor.check_claude_retention(_settings(tmp_path, {"cleanupPeriodDays": days, "model": "sonnet"}))
    assert c.status == "ok" and f"cleanupPeriodDays is {days}" in c.detail and c.fix == ""


@pytest.mark.parametrize("days", [7, 30, 364])
def test_short_retention_warns_with_the_number(tmp_path: Path, days: int) -> None:
    c = doctor.check_claude_retention(_settings(tmp_path, {"cleanupPeriodDays": days}))
    assert c.status == "warn" and f"deletes transcripts after {days} days" in c.detail
    assert '"cleanupPeriodDays": 36500' in c.fix


def test_zero_and_nonsense_values_warn(tmp_path: Path) -> None:
    zero = doctor.check_claude_retention(_settings(tmp_path / "a", {"cleanupPeriodDays": 0}))
    assert zero.status == "warn" and "no transcripts at all" in zero.detail
    text = doctor.check_claude_retention(_settings(tmp_path / "b", {"cleanupPeriodDays": "forever"}))
    assert text.status == "warn" and "'forever', not a number of days" in text.detail
    broken = doctor.check_claude_retention(_settings(tmp_path / "c", "{not json"))
    assert broken.status == "warn" and "unreadable" in broken.detail and "36500" in broken.fix


def test_the_check_is_part_of_doctor(tmp_path: Path) -> None:
    assert doctor.check_claude_retention in doctor.CHECKS
    names = [c.name for c in doctor.run_checks(_settings(tmp_path, {"cleanupPeriodDays": 36500}))]
    assert "claude retention" in names
