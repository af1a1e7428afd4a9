"""`aistack hooks …`, `aistack sentinel …` and doctor's hook check, run as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from services.runtime import bootstrap
from services.sentinel import alerts, approvals
from services.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]


def aistack(*args: str, home: Path, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items()
            if not k.startswith(("TELEGRAM_", "ADMIN_", "DATABASE_", "SENTINEL_"))}
    full.update({"AISTACK_HOME": str(home), "CLAUDE_HOME": str(home / "claude"), "CODEX_HOME": str(home / "codex"),
                 "SENTINEL_AUDIT_DIR": str(home / "audit"), "COLUMNS": "200", "HOME": "/home/dev", **env})
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], env=full, cwd=ROOT, capture_output=True,
                          text=True, timeout=60, input=stdin)


def hook(home: Path, command: str) -> subprocess.CompletedProcess[str]:
    payload = {"session_id": "s", "transcript_path": "", "cwd": "/home/dev/project", "permission_mode": "default",
               "hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"command": command},
               "tool_use_id": "t"}
    env = {**os.environ, "AISTACK_HOME": str(home), "SENTINEL_AUDIT_DIR": str(home / "audit"), "HOME": "/home/dev",
           "SENTINEL_DAEMON": "off"}
    env.pop("SENTINEL_POLICY", None)
    return subprocess.run([sys.executable, str(ROOT / "hooks" / "pre_tool_use.py")], input=json.dumps(payload),
                          env=env, capture_output=True, text=True, timeout=30)


def test_explain_shows_parse_and_rule(tmp_path: Path) -> None:
    out = aistack("sentinel", "explain", "sudo env X=1 bash -c 'rm -r -f \"$HOME\"/work'", home=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "rm-recursive-force" in out.stdout and "block" in out.stdout
    assert "/home/dev/work" in out.stdout  # the path the shell would really use


def test_hooks_install_then_doctor_sees_a_known_bad_call_blocked(tmp_path: Path) -> None:
    (tmp_path / "claude").mkdir()
    settings = tmp_path / "claude" / "settings.json"
    settings.write_text(json.dumps({"model": "opus", "hooks": {"Stop": [{"hooks": [{"type": "command",
                                                                                  "command": "echo bye"}]}]}}))
    out = aistack("hooks", "install", home=tmp_path)
    assert out.returncode == 0, out.stderr
    data = json.loads(settings.read_text())
    assert data["model"] == "opus" and data["hooks"]["Stop"]
    pre = data["hooks"]["PreToolUse"][0]["hooks"][0]["command"]
    assert pre.startswith(str(ROOT / ".venv" / "bin" / "python")) or pre.startswith(sys.executable)
    doctor = aistack("doctor", home=tmp_path)
    assert "sentinel hook" in doctor.stdout and "blocked a known-bad call" in doctor.stdout, doctor.stdout
    assert aistack("hooks", "uninstall", home=tmp_path).returncode == 0
    assert "PreToolUse" not in json.loads(settings.read_text()).get("hooks", {})
    doctor = aistack("doctor", home=tmp_path)
    assert "not installed" in doctor.stdout


def test_verify_reports_a_tampered_line(tmp_path: Path) -> None:
    for cmd in ("ls", "rm -rf /", "pwd"):
        hook(tmp_path, cmd)
    ok = aistack("sentinel", "verify", home=tmp_path)
    assert ok.returncode == 0 and "ok" in ok.stdout, ok.stdout + ok.stderr
    [log] = list((tmp_path / "audit").glob("*.jsonl"))
    lines = log.read_text().splitlines()
    lines[1] = lines[1].replace('"block"', '"allow"')
    log.write_text("\n".join(lines) + "\n")
    bad = aistack("sentinel", "verify", home=tmp_path)
    assert bad.returncode == 1 and f"{log.name}:2" in bad.stdout and "modified" in bad.stdout


def test_replay_rejudges_under_the_current_policy(tmp_path: Path) -> None:
    hook(tmp_path, "git push origin main")
    hook(tmp_path, "rm -rf /srv/data")
    (tmp_path / "policy.toml").write_text(
        '[[rule]]\nid = "no-push"\nclass = "command"\nseverity = "block"\nreason = "no pushing today"\n'
        'alternative = "open a pull request"\nparams = { program = "git", args = ["push"] }\n')
    [log] = list((tmp_path / "audit").glob("*.jsonl"))
    out = aistack("sentinel", "replay", str(log), home=tmp_path, SENTINEL_POLICY=str(tmp_path / "policy.toml"))
    assert out.returncode == 0, out.stderr
    assert "allow → block [no-push] git push origin main" in out.stdout
    assert "changed: 1" in out.stdout and "same: 1" in out.stdout


def test_check_policy_names_the_broken_rule(tmp_path: Path) -> None:
    bad = tmp_path / "mine.toml"
    bad.write_text('[[rule]]\nid = "x"\nclass = "command"\nseverity = "maybe"\nreason = "?"\n')
    out = aistack("sentinel", "check-policy", str(bad), home=tmp_path)
    assert out.returncode == 2 and "mine.toml" in out.stderr and "maybe" in out.stderr
    assert aistack("sentinel", "check-policy", home=tmp_path).returncode == 0


def test_approve_by_code_from_the_terminal(tmp_path: Path) -> None:
    blocked = hook(tmp_path, "git reset --hard HEAD~3")
    assert blocked.returncode == 2
    code = blocked.stderr.rsplit("approve code ", 1)[1].strip().rstrip(".")
    rt = bootstrap(load_settings(env_file=None, aistack_home=tmp_path, database_url=None))
    from services.sentinel import spool
    from services.sentinel.report import state_dirs

    alerts_dir, approvals_dir = state_dirs(rt.settings)
    for path, record in spool.pending_alerts(alerts_dir):  # what the bot's job does
        alerts.ingest(rt.engine, record)
        spool.ack(path)
    out = aistack("sentinel", "approve", code.lower(), home=tmp_path)
    assert out.returncode == 0, out.stderr
    assert hook(tmp_path, "git reset --hard HEAD~3").returncode == 0
    assert approvals.consume(blocked_hash(rt, code), directory=approvals_dir) is None  # used up
    assert aistack("sentinel", "approve", "ZZZZZZ", home=tmp_path).returncode == 2


def blocked_hash(rt, code: str) -> str:  # type: ignore[no-untyped-def]
    alert = alerts.by_code(rt.engine, code)
    assert alert is not None
    return alert.call_hash
