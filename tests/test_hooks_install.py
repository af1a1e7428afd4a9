"""`aistack hooks install` / hooks/install-hooks.sh: merge SENTINEL into Claude Code's settings.json and back out."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from services.sentinel import install as inst

ROOT = Path(__file__).resolve().parents[1]
VENV_PY = ROOT / ".venv" / "bin" / "python"

USER_SETTINGS: dict[str, Any] = {
    "model": "opus",
    "permissions": {"allow": ["Bash(git status)"], "deny": ["Read(./secrets/**)"]},
    "env": {"FOO": "bar"},
    "hooks": {
        "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "~/bin/my-bash-guard"}]}],
        "PostToolUse": [{"matcher": "Edit|Write",
                         "hooks": [{"type": "command", "command": "ruff format", "timeout": 5}]}],
        "Stop": [{"hooks": [{"type": "command", "command": "notify-send done"}]}],
    },
}


def _ours(settings: dict[str, Any], event: str) -> list[dict[str, Any]]:
    return [h for g in settings["hooks"].get(event, []) for h in g["hooks"]
            if "pre_tool_use.py" in h["command"] or "post_tool_use.py" in h["command"]]


@pytest.fixture(autouse=True)
def _private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """install() prepares $AISTACK_HOME/sentinel: keep that (and CLAUDE_HOME) away from the real home."""
    monkeypatch.setenv("AISTACK_HOME", str(tmp_path / "aistack-home"))
    monkeypatch.setenv("CLAUDE_HOME", str(tmp_path / "claude-home"))


@pytest.fixture
def settings(tmp_path: Path) -> Path:
    path = tmp_path / ".claude" / "settings.json"
    path.parent.mkdir()
    path.write_text(json.dumps(USER_SETTINGS, indent=2))
    return path


def test_install_keeps_the_users_settings_and_hooks(settings: Path) -> None:
    res = inst.install(settings)
    assert res.changed and res.backup is not None
    data = json.loads(settings.read_text())
    for key in ("model", "permissions", "env"):
        assert data[key] == USER_SETTINGS[key]
    assert data["hooks"]["Stop"] == USER_SETTINGS["hooks"]["Stop"]
    assert data["hooks"]["PreToolUse"][0] == USER_SETTINGS["hooks"]["PreToolUse"][0]
    assert data["hooks"]["PostToolUse"][0] == USER_SETTINGS["hooks"]["PostToolUse"][0]
    (pre,) = _ours(data, "PreToolUse")
    (post,) = _ours(data, "PostToolUse")
    assert data["hooks"]["PreToolUse"][-1] == {"matcher": "*", "hooks": [pre]}
    assert pre["type"] == "command" and pre["timeout"] == 10
    assert pre["command"] == f"{VENV_PY} -I -S {ROOT / 'hooks' / 'pre_tool_use.py'}"
    assert post["command"] == f"{VENV_PY} -I -S {ROOT / 'hooks' / 'post_tool_use.py'}"


def test_install_prepares_the_state_directories(settings: Path, tmp_path: Path) -> None:
    inst.install(settings)
    for name in ("alerts", "approvals"):
        d = tmp_path / "aistack-home" / "sentinel" / name
        assert d.is_dir() and (d.stat().st_mode & 0o777) == 0o700


def test_default_settings_path_follows_claude_home(tmp_path: Path) -> None:
    assert inst.default_settings_path() == tmp_path / "claude-home" / "settings.json"
    assert inst.project_settings_path(tmp_path / "p") == tmp_path / "p" / ".claude" / "settings.json"


def test_the_command_uses_the_absolute_venv_interpreter(settings: Path) -> None:
    res = inst.install(settings)
    for cmd in res.commands.values():
        words = shlex.split(cmd)
        assert words[0] == str(VENV_PY) and os.path.isabs(words[0]) and "shims" not in words[0]
        assert words[-1].endswith(".py") and os.path.isabs(words[-1])


def test_install_is_idempotent_and_backs_up_once(settings: Path) -> None:
    first = inst.install(settings)
    text = settings.read_text()
    second = inst.install(settings)
    assert not second.changed and second.backup is None
    assert settings.read_text() == text
    assert len(_ours(json.loads(text), "PreToolUse")) == 1
    backups = sorted(settings.parent.glob("settings.json.bak-*"))
    assert backups == [first.backup]
    assert json.loads(backups[0].read_text()) == USER_SETTINGS


def test_reinstall_updates_in_place(settings: Path) -> None:
    inst.install(settings)
    res = inst.install(settings, timeout=20)
    assert res.changed
    data = json.loads(settings.read_text())
    assert [h["timeout"] for h in _ours(data, "PreToolUse")] == [20]
    assert [h["timeout"] for h in _ours(data, "PostToolUse")] == [20]


def test_uninstall_removes_exactly_ours(settings: Path) -> None:
    inst.install(settings)
    res = inst.uninstall(settings)
    assert res.changed and res.removed == 2
    assert json.loads(settings.read_text()) == USER_SETTINGS
    again = inst.uninstall(settings)
    assert not again.changed


def test_install_into_missing_file_and_uninstall_leaves_it_clean(tmp_path: Path) -> None:
    path = tmp_path / "new" / ".claude" / "settings.json"
    res = inst.install(path)
    assert res.changed and res.backup is None
    assert set(json.loads(path.read_text())["hooks"]) == {"PreToolUse", "PostToolUse"}
    inst.uninstall(path)
    assert json.loads(path.read_text()) == {}


def test_corrupt_settings_are_left_untouched(settings: Path) -> None:
    settings.write_text('{"model": "opus",, }')
    before = settings.read_bytes()
    with pytest.raises(inst.InstallError, match=r"not valid JSON \(line 1"):
        inst.install(settings)
    with pytest.raises(inst.InstallError):
        inst.uninstall(settings)
    assert settings.read_bytes() == before
    assert list(settings.parent.iterdir()) == [settings]

    settings.write_text('{"hooks": []}')
    with pytest.raises(inst.InstallError, match='"hooks" is not an object'):
        inst.install(settings)


def test_paths_with_spaces_are_quoted(tmp_path: Path) -> None:
    hooks = tmp_path / "my project" / "hooks"
    hooks.mkdir(parents=True)
    for name in inst.SCRIPTS.values():
        (hooks / name).write_text("")
    py = tmp_path / "my venv" / "bin" / "python"
    py.parent.mkdir(parents=True)
    py.symlink_to(sys.executable)
    path = tmp_path / "settings.json"
    res = inst.install(path, python=py, hooks_dir=hooks)
    words = shlex.split(res.commands["PreToolUse"])
    assert words == [str(py), "-I", "-S", str(hooks / "pre_tool_use.py")]
    assert inst.uninstall(path, hooks_dir=hooks).removed == 2


def test_shims_and_scripts_are_refused(tmp_path: Path) -> None:
    shim = tmp_path / ".pyenv" / "shims" / "python3"
    shim.parent.mkdir(parents=True)
    shim.write_text("#!/bin/sh\n")
    shim.chmod(0o755)
    with pytest.raises(inst.InstallError, match="shim"):
        inst.install(tmp_path / "s.json", python=shim)
    with pytest.raises(inst.InstallError, match="not an executable"):
        inst.install(tmp_path / "s.json", python=ROOT / "hooks" / "pre_tool_use.py")
    assert not (tmp_path / "s.json").exists()


def test_symlinked_settings_are_written_through(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "settings.json"
    real.parent.mkdir()
    real.write_text("{}")
    link = tmp_path / "settings.json"
    link.symlink_to(real)
    inst.install(link)
    assert link.is_symlink()
    assert _ours(json.loads(real.read_text()), "PreToolUse")


def test_install_hooks_sh(tmp_path: Path) -> None:
    project = tmp_path / "some project"
    (project / ".claude").mkdir(parents=True)
    settings = project / ".claude" / "settings.json"
    settings.write_text(json.dumps(USER_SETTINGS))
    script = ROOT / "hooks" / "install-hooks.sh"
    assert os.access(script, os.X_OK)
    out = subprocess.run([str(script), "--project", str(project)], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "hooks installed" in out.stdout
    data = json.loads(settings.read_text())
    (pre,) = _ours(data, "PreToolUse")
    assert shlex.split(pre["command"])[0] == str(VENV_PY)
    out = subprocess.run([str(script), "--project", str(project)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "nothing changed" in out.stdout
    out = subprocess.run([str(script), "uninstall", "--settings", str(settings)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(settings.read_text()) == USER_SETTINGS
    settings.write_text("{oops")
    out = subprocess.run([str(script), "--settings", str(settings)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "not valid JSON" in out.stderr
    assert settings.read_text() == "{oops"


def test_installed_command_runs_the_hook(tmp_path: Path) -> None:
    """The exact command written to settings.json, run through a shell as Claude Code does, answers."""
    res = inst.install(tmp_path / "settings.json")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
           "AISTACK_HOME": str(tmp_path / "aistack"), "SENTINEL_AUDIT_DIR": str(tmp_path / "audit"),
           "SENTINEL_DAEMON": "off"}
    payload = json.dumps({"session_id": "s", "cwd": str(tmp_path), "tool_name": "Bash",
                          "tool_input": {"command": "ls -la"}, "tool_use_id": "t", "permission_mode": "default"})
    for cmd in res.commands.values():
        out = subprocess.run(["/bin/sh", "-c", cmd], input=payload, cwd="/", env=env, capture_output=True,
                             text=True, timeout=30)
        assert out.returncode == 0, out.stderr
    (log,) = (tmp_path / "audit").glob("*.jsonl")
    assert [json.loads(x)["event"] for x in log.read_text().splitlines()] == ["pre", "post"]
