"""End to end: the REAL Claude Code CLI, offline against a fake Messages API, with SENTINEL's hooks installed.

The CLI (npm @anthropic-ai/claude-code, installed by `.ci/claude_code.sh`, path in AISTACK_CLAUDE_BIN) runs
`claude -p … --output-format json --allowedTools Bash` with a fresh HOME whose `.claude/settings.json` was written
by `services.sentinel.install.install`. `tests/fake_anthropic.py` plays the model on 127.0.0.1: it asks for one Bash
call, then answers with text once the tool_result comes back, and records what the CLI sent.

Without AISTACK_CLAUDE_BIN the tests are skipped, except under CI (CI set), where a missing CLI is a failure.

The victim directory lives outside /tmp, /var/tmp and $TMPDIR on purpose: the default policy lets `rm -rf` through
inside temp directories, where pytest's tmp_path is.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from services.sentinel.install import install
from tests.fake_anthropic import FakeAnthropic, result_text

RUN_TIMEOUT = 25  # seconds for one CLI run; a run takes about a second here
TEMP_DIRS = ("/tmp", "/var/tmp")  # as policies/sentinel.toml's temp_dirs, plus $TMPDIR below


@dataclass
class Run:
    proc: subprocess.CompletedProcess[str]
    result: dict[str, Any]  # the CLI's --output-format json result
    tool_results: list[dict[str, Any]]  # the tool_result blocks the fake model received
    tool_use_ids: list[str]  # the ids of the tool_use blocks the fake model sent, in order
    audit: list[dict[str, Any]]  # SENTINEL_AUDIT_DIR/*.jsonl, every line

    def why(self) -> str:
        out, err = self.proc.stdout[-3000:], self.proc.stderr[-3000:]
        return f"\nCLI exit {self.proc.returncode}\nstdout: {out}\nstderr: {err}"


@pytest.fixture
def claude_bin() -> str:
    path = os.environ.get("AISTACK_CLAUDE_BIN", "").strip()
    if not path:
        if os.environ.get("CI"):
            pytest.fail("CI is set but AISTACK_CLAUDE_BIN is not: run `eval \"$(bash .ci/claude_code.sh)\"; "
                        "export AISTACK_CLAUDE_BIN` first")
        pytest.skip("AISTACK_CLAUDE_BIN is unset: install the Claude Code CLI with "
                    "`eval \"$(bash .ci/claude_code.sh)\"; export AISTACK_CLAUDE_BIN` to run this end-to-end test")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(f"AISTACK_CLAUDE_BIN={path} is not an executable file")
    return path


def _is_temp(path: str) -> bool:
    temp = [*TEMP_DIRS, os.environ.get("TMPDIR", "").rstrip("/")]
    return any(d and (path == d or path.startswith(d + "/")) for d in temp)


@pytest.fixture
def outside_temp() -> Iterator[Path]:
    """A fresh directory outside every temp dir the policy exempts (so `rm -rf` there is what SENTINEL blocks)."""
    for base in ("/dev/shm", os.path.join(os.path.expanduser("~"), ".cache")):
        if os.path.isdir(base) and os.access(base, os.W_OK) and not _is_temp(os.path.realpath(base)):
            break
    else:
        pytest.skip("no writable directory outside /tmp, /var/tmp and $TMPDIR for the victim")
    made = tempfile.mkdtemp(prefix="aistack-e2e-", dir=base)
    try:
        yield Path(made)
    finally:
        shutil.rmtree(made, ignore_errors=True)


def _run_claude(claude: str, tmp_path: Path, command: str) -> Run:
    home = tmp_path / "home"
    project = home / "project"
    project.mkdir(parents=True)
    install(home / ".claude" / "settings.json")
    audit_dir = tmp_path / "audit"
    loopback = "127.0.0.1,localhost,::1"
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "HOME": str(home),
        "AISTACK_HOME": str(tmp_path / "aistack"),
        "SENTINEL_AUDIT_DIR": str(audit_dir),
        "SENTINEL_DAEMON_IDLE": "10",  # the judge daemon the hook starts must not outlive the test for long
        "ANTHROPIC_API_KEY": "sk-ant-fake-e2e",
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "NO_PROXY": loopback,
        "no_proxy": loopback,
    }
    with FakeAnthropic([command]) as api:
        env["ANTHROPIC_BASE_URL"] = api.url
        proc = subprocess.run(
            [claude, "-p", "Please run the scripted command.", "--output-format", "json", "--allowedTools", "Bash"],
            env=env, cwd=project, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=RUN_TIMEOUT)
        tool_results = api.tool_results()
        tool_use_ids = list(api.tool_use_ids)
    audit = [json.loads(line) for f in sorted(audit_dir.glob("*.jsonl")) for line in f.read_text().splitlines()]
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        result = {}
    run = Run(proc, result, tool_results, tool_use_ids, audit)
    assert proc.returncode == 0 and result.get("type") == "result", f"the CLI run failed{run.why()}"
    assert len(tool_use_ids) == 1 and len(tool_results) == 1, f"expected one tool call and its result{run.why()}"
    assert tool_results[0]["tool_use_id"] == tool_use_ids[0]
    return run


def test_sentinel_blocks_rm_rf_from_real_claude_code(claude_bin: str, tmp_path: Path, outside_temp: Path) -> None:
    victim = outside_temp / "project"
    (victim / "src").mkdir(parents=True)
    (victim / "src" / "keep.txt").write_text("precious\n")

    run = _run_claude(claude_bin, tmp_path, f"rm -rf {victim}")

    # The command never ran.
    assert (victim / "src" / "keep.txt").read_text() == "precious\n", f"the victim was touched{run.why()}"
    # The model was told why, as an error result carrying SENTINEL's one stderr line.
    block = run.tool_results[0]
    assert block.get("is_error") is True, block
    assert "SENTINEL blocked [rm-recursive-force]" in result_text(block), block
    # The CLI reports the call as denied (2.1.197 does).
    if "permission_denials" in run.result:
        denied = [d for d in run.result["permission_denials"] if d.get("tool_use_id") == run.tool_use_ids[0]]
        assert denied and denied[0].get("tool_name") == "Bash", run.result["permission_denials"]
        assert denied[0].get("tool_input", {}).get("command") == f"rm -rf {victim}"
    # SENTINEL's audit log has the block, and no post line: nothing ran.
    pre = [e for e in run.audit if e.get("event") == "pre" and e.get("tool_use_id") == run.tool_use_ids[0]]
    assert [(e["decision"], e["rule_id"]) for e in pre] == [("block", "rm-recursive-force")], run.audit
    assert pre[0]["tool_name"] == "Bash" and pre[0]["subject"] == f"rm -rf {victim}"
    assert pre[0]["session_id"] == run.result.get("session_id", pre[0]["session_id"])
    assert not [e for e in run.audit if e.get("event") == "post"], run.audit


def test_sentinel_allows_harmless_command_from_real_claude_code(claude_bin: str, tmp_path: Path) -> None:
    run = _run_claude(claude_bin, tmp_path, "echo hello")

    block = run.tool_results[0]
    assert not block.get("is_error"), block
    assert "hello" in result_text(block), block
    assert not run.result.get("permission_denials"), run.result
    mine = [e for e in run.audit if e.get("tool_use_id") == run.tool_use_ids[0]]
    assert [(e["event"], e["decision"]) for e in mine] == [("pre", "allow"), ("post", None)], run.audit
    assert mine[1]["outcome"] == "success" and mine[1]["subject"] == "echo hello", mine[1]
