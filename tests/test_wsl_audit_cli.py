"""`wsl-audit` and `aistack health` as a user runs them: real processes over a fake host tree (WSL_AUDIT_ROOT),
with exit codes 0/1/2 for ok/warn/crit, JSON, the thresholds in force, the watch loop and the event log."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.health_fixtures import FakeHost, fake_host

BIN = Path(sys.executable).parent
# The real disk under the tmp root must not decide an exit code: neutral disk thresholds in every run.
NEUTRAL_DISK = "[disk]\nused_warn = 100.0\nused_crit = 100.0\nfree_crit_gib = 0.0\n"


@pytest.fixture
def host(tmp_path: Path) -> FakeHost:
    return fake_host(tmp_path).process(100, "python", 300).process(200, "node", 900)


def env(tmp_path: Path, host: FakeHost, config: str = "") -> dict[str, str]:
    cfg = tmp_path / "health.toml"
    cfg.write_text(NEUTRAL_DISK + config)
    out = {k: v for k, v in os.environ.items() if k not in ("DOCKER_HOST", "DATABASE_URL")}
    out.update(WSL_AUDIT_ROOT=str(host.root), WSL_AUDIT_HOME=str(tmp_path / "state"), WSL_AUDIT_CONFIG=str(cfg),
               AISTACK_HOME=str(tmp_path / "aistack"), NO_COLOR="1")
    return out


def run(args: list[str], e: dict[str, str], exe: str = "wsl-audit") -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / exe), *args], env=e, capture_output=True, text=True, timeout=60)


def test_exit_codes_follow_the_worst_status(tmp_path: Path, host: FakeHost) -> None:
    e = env(tmp_path, host)
    ok = run([], e)
    assert ok.returncode == 0, ok.stderr
    assert "memory 50% used" in ok.stdout and ok.stdout.rstrip().splitlines()[-1].startswith("healthy")
    host.meminfo(total_gib=16, available_gib=2.4)  # 85 % used
    warn = run([], e)
    assert warn.returncode == 1 and warn.stdout.startswith("WARN  memory.used")
    host.meminfo(total_gib=16, available_gib=0.5)  # 3 % available
    crit = run([], e)
    assert crit.returncode == 2 and crit.stdout.startswith("CRIT  memory.used")
    assert "→ " in crit.stdout.splitlines()[1]  # the fix hint under it


def test_json_lists_every_finding_worst_first(tmp_path: Path, host: FakeHost) -> None:
    host.meminfo(total_gib=16, available_gib=2.4)
    out = run(["--json"], env(tmp_path, host))
    assert out.returncode == 1
    data = json.loads(out.stdout)
    assert data["status"] == "warn" and data["exit_code"] == 1
    first = data["findings"][0]
    assert (first["check"], first["status"], first["unit"]) == ("memory.used", "warn", "%")
    assert first["band"] == {"warn": 80.0, "crit": 95.0, "higher_is_worse": True, "clear_margin": 5.0}
    checks = {f["check"] for f in data["findings"]}
    assert {"docker.engine", "swap.used", "disk.used", "wsl.detected", "processes.top"} <= checks
    docker = next(f for f in data["findings"] if f["check"] == "docker.engine")
    assert docker["status"] == "info" and "not found" in docker["summary"]


def test_explain_prints_the_thresholds_in_force_and_their_source(tmp_path: Path, host: FakeHost) -> None:
    e = env(tmp_path, host, "[memory]\nused_warn = 70\n")
    out = run(["--explain"], e)
    assert out.returncode == 0
    assert "used_warn = 70.0" in out.stdout and e["WSL_AUDIT_CONFIG"] in out.stdout.splitlines()[0]
    assert "storm_warn = 3" in out.stdout and "notify_level = \"warn\"" in out.stdout
    host.meminfo(total_gib=16, available_gib=4.4)  # 72.5 % used: warn under the user's 70
    assert run([], e).returncode == 1


def test_a_bad_thresholds_file_is_exit_3_naming_the_key(tmp_path: Path, host: FakeHost) -> None:
    out = run([], env(tmp_path, host, "[memory]\nused_warm = 70\n"))
    assert out.returncode == 3
    assert "unknown key memory.used_warm" in out.stderr and out.stdout == ""
    assert run(["--bogus"], env(tmp_path, host)).returncode == 3  # usage errors are not "critical"


def test_watch_alerts_once_logs_events_and_stops_on_sigterm(tmp_path: Path, host: FakeHost) -> None:
    host.meminfo(total_gib=16, available_gib=0.5)
    e = env(tmp_path, host, "[alerting]\npending_seconds = 0.0\n")
    proc = subprocess.Popen([str(BIN / "wsl-audit"), "watch", "--interval", "0.3", "--no-notify"], env=e,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    events_dir = tmp_path / "state" / "events"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not list(events_dir.glob("*.jsonl")):
        time.sleep(0.1)
    time.sleep(1.0)  # several more ticks while the condition lasts: no repeat within the hour
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert out.count("CRIT memory.used") == 1, out
    log = run(["events", "--json"], e)
    records = json.loads(log.stdout)["records"]
    kinds = [r["kind"] for r in records if r["check"] == "memory.used"]
    assert kinds.count("fired") == 1 and kinds.count("observation") >= 3
    crit_only = json.loads(run(["events", "--json", "--level", "crit", "--check", "memory"], e).stdout)["records"]
    assert crit_only and all(r["level"] == "crit" and r["check"].startswith("memory") for r in crit_only)
    assert json.loads(run(["events", "--json", "--check", "docker"], e).stdout)["records"] == []
    text = run(["events", "--since", "1h"], e).stdout
    assert "fired" in text and "memory.used" in text
    assert "worst CRIT" in run(["report"], e).stdout


def test_events_rejects_a_junk_since(tmp_path: Path, host: FakeHost) -> None:
    out = run(["events", "--since", "yesterday-ish"], env(tmp_path, host))
    assert out.returncode == 3 and "use a duration like 90m" in out.stderr


def test_events_too_far_back_says_so(tmp_path: Path, host: FakeHost) -> None:
    out = run(["events", "--since", "99999999d"], env(tmp_path, host))
    assert out.returncode == 3 and out.stdout == ""
    assert out.stderr == ("wsl-audit: since '99999999d' is too far back (before the year 1): use e.g. 30d or a date "
                          "like 2026-11-20\n")


@pytest.mark.parametrize("interval", ["nan", "inf", "-inf", "0", "-5", "soon"])
def test_watch_interval_must_be_a_finite_positive_number(tmp_path: Path, host: FakeHost, interval: str) -> None:
    out = run(["watch", f"--interval={interval}", "--no-notify"], env(tmp_path, host))  # nan used to busy-loop
    assert out.returncode == 3 and "argument --interval: " in out.stderr and "e.g. 30" in out.stderr
    assert not (tmp_path / "state").exists()  # refused before the watch started


def test_json_and_config_work_before_or_after_their_subcommand(tmp_path: Path, host: FakeHost) -> None:
    e = env(tmp_path, host)
    for args in (["--json", "events"], ["events", "--json"]):
        assert json.loads(run(args, e).stdout) == {"records": [], "skipped_lines": 0}, args
    bad = tmp_path / "bad.toml"
    bad.write_text("[memory]\nused_warm = 70\n")
    for args in (["watch", "--config", str(bad)], ["--config", str(bad), "watch"]):
        out = run([*args, "--no-notify"], e)
        assert out.returncode == 3 and "unknown key memory.used_warm" in out.stderr, args  # read, not rejected


@pytest.mark.parametrize(("args", "flag"), [(["--json", "watch"], "--json"), (["--explain", "report"], "--explain"),
                                            (["--no-save", "events"], "--no-save"),
                                            (["--config", "x.toml", "report"], "--config")])
def test_a_top_level_option_the_subcommand_ignores_is_refused(tmp_path: Path, host: FakeHost, args: list[str],
                                                              flag: str) -> None:
    out = run(args, env(tmp_path, host))
    assert out.returncode == 3 and f"{flag} does not apply to `{args[-1]}`; drop it" in out.stderr


def test_aistack_health_is_the_same_tool(tmp_path: Path, host: FakeHost) -> None:
    host.meminfo(total_gib=16, available_gib=0.5)
    e = env(tmp_path, host)
    out = run(["health", "--json"], e, exe="aistack")
    assert out.returncode == 2, out.stderr
    assert json.loads(out.stdout)["findings"][0]["check"] == "memory.used"
    assert run(["health", "--explain"], e, exe="aistack").stdout.startswith("# thresholds in force")
    assert run(["health", "events", "--since", "1h"], e, exe="aistack").returncode == 0
    assert json.loads(run(["health", "--json", "events"], e, exe="aistack").stdout)["records"] == []
    bad = tmp_path / "bad.toml"
    bad.write_text("[memory]\nused_warm = 70\n")
    out = run(["health", "--config", str(bad), "watch", "--no-notify"], e, exe="aistack")
    assert out.returncode == 3 and "unknown key memory.used_warm" in out.stderr


def test_the_one_shot_does_not_import_the_heavy_stack(tmp_path: Path, host: FakeHost) -> None:
    """The 300 ms budget: no pydantic, SQLAlchemy, typer or docker SDK on the one-shot path without Docker."""
    probe = ("import sys; from bot import wsl_audit; wsl_audit.check(); "
             "print(sorted(m for m in ('pydantic', 'sqlalchemy', 'typer', 'docker', 'requests', 'yaml') "
             "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], env=env(tmp_path, host), capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stderr


SYSTEMD = Path(__file__).resolve().parents[1] / "compose" / "systemd"


def _wsl_audit_args(command: str) -> list[str]:
    import shlex

    words = shlex.split(command)
    i = next(i for i, w in enumerate(words) if w.endswith("/.venv/bin/wsl-audit"))
    return [w for w in words[i + 1:] if not w.startswith((">", "2>"))]


def test_the_systemd_units_and_cron_lines_run_real_wsl_audit_commands() -> None:
    import configparser

    from bot.wsl_audit import parser

    units = {}
    for name in ("wsl-audit-watch.service", "wsl-audit-report.service", "wsl-audit-report.timer"):
        cp = configparser.ConfigParser(strict=True, interpolation=None)
        cp.optionxform = str  # type: ignore[assignment,method-assign]
        cp.read(SYSTEMD / name)
        units[name] = cp
    watch = units["wsl-audit-watch.service"]
    assert watch["Service"]["Restart"] == "on-failure" and watch["Install"]["WantedBy"] == "default.target"
    assert units["wsl-audit-report.timer"]["Timer"]["Persistent"] == "true"
    commands = [watch["Service"]["ExecStart"], units["wsl-audit-report.service"]["Service"]["ExecStart"]]
    cron = [line for line in (SYSTEMD / "crontab").read_text().splitlines() if line and not line.startswith("#")]
    assert len(cron) == 3
    for line in cron:
        schedule = line.split()[0] if line.startswith("@") else " ".join(line.split()[:5])
        assert schedule == "@reboot" or len(schedule.split()) == 5
        commands.append(line)
    seen = set()
    for command in commands:
        args = parser().parse_args(_wsl_audit_args(command))  # exits (code 3) on anything wsl-audit rejects
        seen.add(args.command)
    assert seen == {"watch", "report"}
    for unit in ("wsl-audit-watch.service", "wsl-audit-report.service"):  # the outbox reads the checkout's .env
        assert units[unit]["Service"]["WorkingDirectory"] == "%h/rtgf-ai-stack"
    for line in cron:
        assert " cd $HOME/rtgf-ai-stack && " in line
        if ">>$HOME/.local/share/wsl-audit/" in line:  # the shell opens the log before wsl-audit runs
            assert "mkdir -p $HOME/.local/share/wsl-audit && " in line
