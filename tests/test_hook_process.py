"""SENTINEL's hooks as Claude Code runs them: real processes, JSON on stdin, exit codes and one stderr line out.

Every test runs `hooks/pre_tool_use.py` / `hooks/post_tool_use.py` in a fresh process with AISTACK_HOME and
SENTINEL_AUDIT_DIR in a temporary directory and HOME pointing at a fake /home/dev.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from services.sentinel import approvals
from services.sentinel.model import ToolCall

ROOT = Path(__file__).resolve().parents[1]
PRE = ROOT / "hooks" / "pre_tool_use.py"
POST = ROOT / "hooks" / "post_tool_use.py"
FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "claude_code_hooks"
FLAGS = ("-I", "-S")  # as `aistack hooks install` writes the command
BLOCK_RE = re.compile(r"^SENTINEL blocked \[(?P<rule>[a-z0-9][a-z0-9.-]*)\]: (?P<text>.+?)"
                      r"(?: To allow once, approve code (?P<code>[0-9A-F]{6})\.)?$")
HEAVY = ("sqlalchemy", "telegram", "pydantic", "pydantic_settings", "yaml", "litellm", "anthropic", "typer", "rich",
         "aiohttp", "psycopg", "httpx", "alembic", "services.store", "services.settings", "bot", "handlers")


# ------------------------------------------------------------------------------------------------ helpers

class Hook:
    """One temporary SENTINEL home: run the hooks against it and read what they left behind."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.home = tmp / "home" / "dev"
        self.home.mkdir(parents=True)
        self.aistack = tmp / "aistack"
        self.audit_dir = tmp / "audit"
        self.env: dict[str, str] = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.home),
                                    "LANG": "C.UTF-8", "AISTACK_HOME": str(self.aistack),
                                    "SENTINEL_AUDIT_DIR": str(self.audit_dir),
                                    # the in-process path; tests/test_judge_daemon.py covers the daemon
                                    "SENTINEL_DAEMON": "off"}

    @property
    def approvals_dir(self) -> str:
        return str(self.aistack / "sentinel" / "approvals")

    @property
    def alerts_dir(self) -> Path:
        return self.aistack / "sentinel" / "alerts"

    def run(self, stdin: bytes | str | dict[str, Any], *, script: Path = PRE, flags: tuple[str, ...] = FLAGS,
            env: dict[str, str] | None = None, cwd: str | Path | None = None,
            timeout: float = 30) -> subprocess.CompletedProcess[str]:
        if isinstance(stdin, dict):
            stdin = json.dumps(stdin)
        if isinstance(stdin, str):
            stdin = stdin.encode("utf-8", "surrogatepass")
        out = subprocess.run([sys.executable, *flags, str(script)], input=stdin, capture_output=True,
                             env={**self.env, **(env or {})}, cwd=str(cwd or self.tmp), timeout=timeout)
        return subprocess.CompletedProcess(out.args, out.returncode, out.stdout.decode(), out.stderr.decode())

    def events(self) -> list[dict[str, Any]]:
        lines: list[dict[str, Any]] = []
        for f in sorted(self.audit_dir.glob("*.jsonl")):
            lines += [json.loads(x) for x in f.read_text().splitlines()]
        return lines

    def last(self) -> dict[str, Any]:
        events = self.events()
        assert events, "no audit line was written"
        return events[-1]

    def alerts(self) -> list[dict[str, Any]]:
        return [json.loads(p.read_text()) for p in sorted(self.alerts_dir.glob("*.json"))]


@pytest.fixture
def hook(tmp_path: Path) -> Hook:
    return Hook(tmp_path)


def fixture_payload() -> dict[str, Any]:
    return json.loads((FIXTURES / "pretooluse_bash.json").read_text())


def call_of(payload: dict[str, Any]) -> ToolCall:
    return ToolCall(payload["tool_name"], payload["tool_input"], payload.get("cwd") or "",
                    payload.get("session_id") or "", payload.get("tool_use_id") or "",
                    payload.get("permission_mode") or "default")


def bash(command: str, **extra: Any) -> dict[str, Any]:
    p = {"session_id": "sess-1", "transcript_path": "/home/dev/.claude/projects/p/sess-1.jsonl",
         "cwd": "/home/dev/project", "permission_mode": "default", "hook_event_name": "PreToolUse",
         "tool_name": "Bash", "tool_input": {"command": command, "description": "test"}, "tool_use_id": "toolu_1"}
    p.update(extra)
    return p


def one_block_line(out: subprocess.CompletedProcess[str]) -> re.Match[str]:
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    m = BLOCK_RE.match(lines[0])
    assert m, lines[0]
    return m


# ----------------------------------------------------------------------------------------- the fixture call

@pytest.mark.parametrize("flags", [FLAGS, ()], ids=["installed", "plain"])
def test_real_fixture_is_blocked_logged_and_alerted(hook: Hook, flags: tuple[str, ...]) -> None:
    raw = (FIXTURES / "pretooluse_bash.json").read_bytes()
    out = hook.run(raw, flags=flags, cwd="/")
    m = one_block_line(out)
    payload = fixture_payload()
    call_hash = call_of(payload).call_hash()
    assert m["code"] == call_hash[:6].upper()
    assert out.stdout == ""
    assert out.stderr.endswith(f". To allow once, approve code {m['code']}.\n")

    ev = hook.last()
    assert ev["event"] == "pre" and ev["decision"] == "block" and ev["rule_id"] == m["rule"]
    assert ev["tool_use_id"] == payload["tool_use_id"] and ev["session_id"] == payload["session_id"]
    assert ev["tool_name"] == "Bash" and ev["cwd"] == "/home/dev/project"
    assert ev["subject"] == "rm -rf /home/dev/project/victim"
    assert ev["input_sha256"] == hashlib.sha256(raw).hexdigest()
    assert ev["call_hash"] == call_hash and ev["code"] == m["code"]
    assert isinstance(ev["policy_hash"], str) and len(ev["policy_hash"]) == 64
    assert isinstance(ev["latency_ms"], (int, float)) and ev["reason"]
    assert ev["seq"] == 1 and ev["prev"] == "0" * 64

    (alert,) = hook.alerts()
    assert alert["call_hash"] == call_hash and alert["code"] == m["code"] and alert["approvable"] is True
    assert alert["rule_id"] == m["rule"] and alert["severity"] == "block"
    assert alert["subject"] == "rm -rf /home/dev/project/victim" and alert["cwd"] == "/home/dev/project"
    assert alert["session_id"] == payload["session_id"] and alert["tool_use_id"] == payload["tool_use_id"]
    assert re.fullmatch(r"[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}", alert["id"])
    for key in ("ts", "tool_name", "reason", "alternative"):
        assert key in alert


def test_allow_prints_nothing_and_logs(hook: Hook) -> None:
    out = hook.run(bash("ls -la"))
    assert (out.returncode, out.stdout, out.stderr) == (0, "", "")
    ev = hook.last()
    assert ev["decision"] == "allow" and ev["subject"] == "ls -la" and ev.get("approved_by") is None
    assert hook.alerts() == []


# -------------------------------------------------------------------------------------------- warn output

ENV_READ = {"session_id": "sess-1", "cwd": "/home/dev/project", "hook_event_name": "PreToolUse", "tool_name": "Read",
            "tool_input": {"file_path": "/home/dev/project/.env"}, "tool_use_id": "toolu_env"}


@pytest.mark.parametrize("mode", ["default", "acceptEdits", "plan"])
def test_warn_asks_where_the_mode_can_prompt(hook: Hook, mode: str) -> None:
    out = hook.run({**ENV_READ, "permission_mode": mode})
    assert out.returncode == 0 and out.stderr == ""
    data = json.loads(out.stdout)
    spec = data["hookSpecificOutput"]
    assert set(data) == {"hookSpecificOutput"}
    assert spec["hookEventName"] == "PreToolUse" and spec["permissionDecision"] == "ask"
    m = re.match(r"SENTINEL warning \[([a-z0-9.-]+)\]: .+", spec["permissionDecisionReason"])
    assert m
    ev = hook.last()
    assert (ev["decision"], ev["rule_id"], ev["permission_mode"]) == ("ask", m[1], mode)


@pytest.mark.parametrize("mode", ["bypassPermissions", "dontAsk", "somethingNew"])
def test_warn_is_a_system_message_where_nobody_is_asked(hook: Hook, mode: str) -> None:
    out = hook.run({**ENV_READ, "permission_mode": mode})
    assert out.returncode == 0 and out.stderr == ""
    data = json.loads(out.stdout)
    assert set(data) == {"systemMessage"}
    m = re.match(r"SENTINEL warning \[([a-z0-9.-]+)\]: .+", data["systemMessage"])
    assert m
    ev = hook.last()
    assert (ev["decision"], ev["rule_id"]) == ("warn", m[1])


# ------------------------------------------------------------------------------------------- fail closed

def _nested(depth: int) -> str:
    return json.dumps(bash("ls"))[:-1] + ', "x": ' + "[" * depth + "]" * depth + "}"


MALFORMED: dict[str, bytes] = {
    "not-json": b"this is not json",
    "empty": b"",
    "whitespace": b"  \n ",
    "not-utf8": json.dumps(bash("ls")).encode().replace(b"ls", b"l\xff\xfes"),
    "utf8-bom": b"\xef\xbb\xbf" + json.dumps(bash("ls")).encode(),
    "nul-byte": json.dumps(bash("ls")).encode().replace(b"ls", b"ls\x00"),
    "nul-escape": json.dumps(bash("ls\x00 -la")).encode(),
    "duplicate-key": b'{"tool_name": "Bash", "tool_input": {"command": "ls"}, "tool_name": "Read"}',
    "duplicate-nested-key": b'{"tool_name": "Bash", "tool_input": {"command": "rm -rf /", "command": "ls"}}',
    "missing-tool-name": json.dumps({"tool_input": {"command": "ls"}}).encode(),
    "tool-name-number": json.dumps({"tool_name": 7, "tool_input": {"command": "ls"}}).encode(),
    "tool-name-empty": json.dumps({"tool_name": "", "tool_input": {"command": "ls"}}).encode(),
    "tool-name-null": json.dumps({"tool_name": None, "tool_input": {}}).encode(),
    "missing-tool-input": json.dumps({"tool_name": "Bash"}).encode(),
    "tool-input-string": json.dumps({"tool_name": "Bash", "tool_input": "rm -rf /"}).encode(),
    "tool-input-list": json.dumps({"tool_name": "Bash", "tool_input": ["rm", "-rf", "/"]}).encode(),
    "cwd-number": json.dumps({**bash("ls"), "cwd": 3}).encode(),
    "top-level-array": json.dumps([bash("ls")]).encode(),
    "top-level-string": b'"Bash"',
    "nan": json.dumps(bash("ls"))[:-1].encode() + b', "x": NaN}',
    "truncated": json.dumps(bash("ls")).encode()[:-7],
    "too-deep": _nested(200_000).encode(),
    "over-1-mib": json.dumps(bash("echo " + "a" * (1 << 20))).encode(),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_input_blocks_with_exit_2(hook: Hook, name: str) -> None:
    out = hook.run(MALFORMED[name])
    m = one_block_line(out)
    assert m["rule"] == "sentinel-bad-input" and m["code"] is None, out.stderr
    assert "approve" not in out.stderr
    ev = hook.last()
    assert (ev["decision"], ev["rule_id"], ev["fail_closed"]) == ("block", "sentinel-bad-input", True)
    assert ev["input_sha256"] == hashlib.sha256(MALFORMED[name]).hexdigest()  # all of it, even over 1 MiB
    (alert,) = hook.alerts()
    assert alert["approvable"] is False and alert["code"] == ""


def test_policy_that_does_not_load_blocks_naming_the_file(hook: Hook) -> None:
    bad = hook.tmp / "my policy.toml"
    bad.write_text("[[rule]]\nid = 'x'\nseverity = \n")
    out = hook.run(bash("ls -la"), env={"SENTINEL_POLICY": str(bad)})
    m = one_block_line(out)
    assert m["rule"] == "sentinel-policy-error" and m["code"] is None
    assert str(bad) in out.stderr
    assert hook.last()["rule_id"] == "sentinel-policy-error"

    out = hook.run(bash("ls -la"), env={"SENTINEL_POLICY": str(hook.tmp / "missing.toml")})
    assert one_block_line(out)["rule"] == "sentinel-policy-error"
    assert "missing.toml" in out.stderr


def test_implicit_user_policy_is_picked_up_from_aistack_home(hook: Hook) -> None:
    hook.aistack.mkdir(parents=True, exist_ok=True)
    (hook.aistack / "sentinel-policy.toml").write_text("this is = = not toml\n")
    out = hook.run(bash("ls -la"))
    assert one_block_line(out)["rule"] == "sentinel-policy-error"
    assert "sentinel-policy.toml" in out.stderr


def test_deadline_blocks(hook: Hook) -> None:
    t = time.monotonic()
    out = hook.run(bash("ls -la", tool_use_id="toolu_slow"), env={"SENTINEL_TEST_SLEEP": "10"})
    took = time.monotonic() - t
    m = one_block_line(out)
    assert m["rule"] == "sentinel-deadline" and m["code"] is None
    assert took < 5, took
    ev = hook.last()
    assert (ev["decision"], ev["rule_id"], ev["tool_use_id"], ev["subject"]) == (
        "block", "sentinel-deadline", "toolu_slow", "ls -la")
    assert hook.alerts()[-1]["approvable"] is False


def _fake_tree(tmp: Path, hookio_source: str) -> Path:
    """A copy of the pre hook next to a stand-in `services.sentinel.hookio` (the real hook script, a fake runtime)."""
    root = tmp / "fake"
    (root / "hooks").mkdir(parents=True)
    (root / "services" / "sentinel").mkdir(parents=True)
    shutil.copy(PRE, root / "hooks" / "pre_tool_use.py")
    (root / "services" / "__init__.py").write_text("")
    (root / "services" / "sentinel" / "__init__.py").write_text("")
    (root / "services" / "sentinel" / "hookio.py").write_text(hookio_source)
    return root / "hooks" / "pre_tool_use.py"


@pytest.mark.parametrize(("name", "source", "rule"), [
    ("import-error", "raise ImportError('broken install')\n", "sentinel-internal-error"),
    ("syntax-error", "def run_pre(:\n", "sentinel-internal-error"),
    ("sys-exit-1", "import sys\ndef run_pre(*a):\n    sys.exit(1)\n", "sentinel-internal-error"),
    ("returns-1", "def run_pre(*a):\n    return 1\n", "sentinel-internal-error"),
    ("raises-keyboard-interrupt", "def run_pre(*a):\n    raise KeyboardInterrupt\n", "sentinel-internal-error"),
    ("hang-in-python", "def run_pre(*a):\n    while True:\n        pass\n", "sentinel-deadline"),
    ("hang-in-c", "import re\ndef run_pre(*a):\n    re.match(r'(a+)+$', 'a' * 40 + 'b')\n", "sentinel-deadline"),
])
def test_no_failure_ever_exits_1(hook: Hook, name: str, source: str, rule: str) -> None:
    """Broken installs, stray exits and hangs (even inside the regex engine) all block with exit 2."""
    script = _fake_tree(hook.tmp, source)
    t = time.monotonic()
    out = hook.run(bash("ls"), script=script)
    assert out.returncode == 2, (name, out.returncode, out.stderr)
    assert BLOCK_RE.match(out.stderr.splitlines()[-1])
    assert f"[{rule}]" in out.stderr
    assert time.monotonic() - t < 5


# ---------------------------------------------------------------------------------------------- approvals

def test_approval_flow(hook: Hook) -> None:
    payload = fixture_payload()
    call_hash = call_of(payload).call_hash()
    m = one_block_line(hook.run(payload))
    (alert,) = hook.alerts()
    assert alert["code"] == m["code"] == call_hash[:6].upper()

    approvals.grant(alert["call_hash"], "admin-42", alert_id=alert["id"], directory=hook.approvals_dir)
    retry = {**payload, "tool_use_id": "toolu_retry"}  # a retry is a new tool use of the identical call
    out = hook.run(retry)
    assert (out.returncode, out.stdout, out.stderr) == (0, "", "")
    ev = hook.last()
    assert (ev["decision"], ev["approved_by"], ev["rule_id"], ev["tool_use_id"]) == (
        "allow", "admin-42", m["rule"], "toolu_retry")
    assert len(hook.alerts()) == 1  # allowed: no new alert

    again = one_block_line(hook.run(retry))  # single use
    assert again["code"] == m["code"]
    assert hook.last()["decision"] == "block" and "approved_by" not in hook.last()


@pytest.mark.parametrize("change", ["command", "cwd", "session_id"])
def test_an_approval_covers_only_the_identical_call(hook: Hook, change: str) -> None:
    payload = fixture_payload()
    approvals.grant(call_of(payload).call_hash(), "admin-42", directory=hook.approvals_dir)
    changed = dict(payload)
    if change == "command":
        changed["tool_input"] = {**payload["tool_input"], "command": "rm -rf /home/dev/project/victim2"}
    else:
        changed[change] = "/home/dev/other" if change == "cwd" else "another-session"
    m = one_block_line(hook.run(changed))
    assert m["code"] == call_of(changed).call_hash()[:6].upper() != call_of(payload).call_hash()[:6].upper()
    assert hook.run(payload).returncode == 0  # the approval was still there for the identical call


def test_fail_closed_blocks_are_never_approvable(hook: Hook) -> None:
    payload = fixture_payload()
    call_hash = call_of(payload).call_hash()
    approvals.grant(call_hash, "admin-42", directory=hook.approvals_dir)
    out = hook.run(payload, env={"SENTINEL_POLICY": str(hook.tmp / "missing.toml")})
    m = one_block_line(out)
    assert m["rule"] == "sentinel-policy-error" and m["code"] is None
    assert (Path(hook.approvals_dir) / f"{call_hash}.json").exists()  # not consumed
    assert hook.alerts()[-1]["approvable"] is False


def test_expired_approval_is_ignored_and_removed(hook: Hook) -> None:
    payload = fixture_payload()
    call_hash = call_of(payload).call_hash()
    approvals.grant(call_hash, "admin-42", ttl=-1, directory=hook.approvals_dir)
    one_block_line(hook.run(payload))
    assert "approved_by" not in hook.last()
    assert not list(Path(hook.approvals_dir).iterdir())


def test_racing_retries_use_an_approval_once(hook: Hook) -> None:
    payload = fixture_payload()
    approvals.grant(call_of(payload).call_hash(), "admin-42", directory=hook.approvals_dir)
    with ThreadPoolExecutor(4) as pool:
        codes = sorted(pool.map(lambda _: hook.run(payload).returncode, range(4)))
    assert codes == [0, 2, 2, 2]
    assert [e.get("approved_by") for e in hook.events()].count("admin-42") == 1


def _approve_policy(hook: Hook) -> Path:
    """A user policy that turns the rule blocking the fixture call into severity `approve`."""
    from services.sentinel.hookio import _Pre  # noqa: F401 - imported to fail loudly if the runtime moved

    first = one_block_line(hook.run(fixture_payload()))
    policy = hook.tmp / "approve.toml"
    policy.write_text(APPROVE_POLICY.format(rule=first["rule"]))
    for f in hook.alerts_dir.glob("*.json"):
        f.unlink()
    return policy


APPROVE_POLICY = """\
[[rule]]
id = "{rule}"
severity = "approve"
"""


def _grant_later(hook: Hook, call_hash: str, delay: float, *, deny: bool = False) -> threading.Thread:
    def work() -> None:
        time.sleep(delay)
        if deny:
            approvals.deny(call_hash, "admin-7", directory=hook.approvals_dir)
        else:
            approvals.grant(call_hash, "admin-7", directory=hook.approvals_dir)
    th = threading.Thread(target=work)
    th.start()
    return th


def test_approve_rule_waits_for_the_admin(hook: Hook) -> None:
    policy = _approve_policy(hook)
    payload = fixture_payload()
    call_hash = call_of(payload).call_hash()
    env = {"SENTINEL_POLICY": str(policy), "SENTINEL_APPROVAL_WAIT": "2"}

    th = _grant_later(hook, call_hash, 0.5)
    t = time.monotonic()
    out = hook.run(payload, env=env)
    th.join()
    assert (out.returncode, out.stderr) == (0, ""), out.stderr
    assert 0.4 < time.monotonic() - t < 3
    ev = hook.last()
    assert (ev["decision"], ev["approved_by"], ev["severity"]) == ("allow", "admin-7", "approve")
    (alert,) = hook.alerts()  # the admin was told before the wait
    assert alert["severity"] == "approve" and alert["approvable"] is True


def test_approve_rule_without_a_decision_blocks(hook: Hook) -> None:
    policy = _approve_policy(hook)
    payload = fixture_payload()
    t = time.monotonic()
    out = hook.run(payload, env={"SENTINEL_POLICY": str(policy), "SENTINEL_APPROVAL_WAIT": "2"})
    took = time.monotonic() - t
    m = one_block_line(out)
    assert m["code"] == call_of(payload).call_hash()[:6].upper()
    assert "no decision within 2 s" in out.stderr
    assert 1.9 < took < 4, took
    assert (hook.last()["decision"], hook.last()["severity"]) == ("block", "approve")


def test_approve_rule_denied_blocks_at_once(hook: Hook) -> None:
    policy = _approve_policy(hook)
    payload = fixture_payload()
    th = _grant_later(hook, call_of(payload).call_hash(), 0.3, deny=True)
    t = time.monotonic()
    out = hook.run(payload, env={"SENTINEL_POLICY": str(policy), "SENTINEL_APPROVAL_WAIT": "5"})
    th.join()
    one_block_line(out)
    assert "kept it blocked" in out.stderr
    assert time.monotonic() - t < 3


def test_approve_rule_without_wait_blocks_with_a_code(hook: Hook) -> None:
    policy = _approve_policy(hook)
    payload = fixture_payload()
    m = one_block_line(hook.run(payload, env={"SENTINEL_POLICY": str(policy)}))
    assert m["code"]
    approvals.grant(call_of(payload).call_hash(), "admin-7", directory=hook.approvals_dir)
    assert hook.run(payload, env={"SENTINEL_POLICY": str(policy)}).returncode == 0


# ------------------------------------------------------------------------------------------- audit failure

def test_audit_write_failure_blocks(hook: Hook) -> None:
    not_a_dir = hook.tmp / "audit-file"
    not_a_dir.write_text("")
    env = {"SENTINEL_AUDIT_DIR": str(not_a_dir / "audit")}
    out = hook.run(bash("ls -la"), env=env)
    m = one_block_line(out)
    assert m["rule"] == "sentinel-audit-error" and m["code"] is None
    assert f"cannot write audit log at {not_a_dir / 'audit'}" in out.stderr and "fix the directory" in out.stderr

    out = hook.run(fixture_payload(), env=env)  # a block stays a block, and says why the log is missing
    m = one_block_line(out)
    assert m["rule"] != "sentinel-audit-error" and "cannot write audit log" in out.stderr

    out = hook.run({**ENV_READ, "permission_mode": "default"}, env=env)  # a warn must not slip through either
    assert one_block_line(out)["rule"] == "sentinel-audit-error" and out.stdout == ""

    out = hook.run(b"garbage", env=env)
    assert one_block_line(out)["rule"] == "sentinel-bad-input"


def test_approved_call_that_cannot_be_logged_is_blocked(hook: Hook) -> None:
    payload = fixture_payload()
    approvals.grant(call_of(payload).call_hash(), "admin-42", directory=hook.approvals_dir)
    not_a_dir = hook.tmp / "audit-file"
    not_a_dir.write_text("")
    out = hook.run(payload, env={"SENTINEL_AUDIT_DIR": str(not_a_dir)})
    assert one_block_line(out)["rule"] == "sentinel-audit-error"


# ------------------------------------------------------------------------------------------------ post hook

@pytest.mark.parametrize("stdin", [b"", b"garbage", b"\xff\xfe\x00", b"[1, 2]", b'{"tool_name": 3}',
                                   b'{"a": 1, "a": 2}', b"{" * 100_000])
def test_post_hook_always_exits_0(hook: Hook, stdin: bytes) -> None:
    out = hook.run(stdin, script=POST)
    assert (out.returncode, out.stdout, out.stderr) == (0, "", "")
    ev = hook.last()
    assert (ev["event"], ev["outcome"], ev["rule_id"]) == ("post", "unknown", "sentinel-bad-input")


def test_post_hook_exits_0_even_when_it_cannot_log(hook: Hook) -> None:
    not_a_dir = hook.tmp / "audit-file"
    not_a_dir.write_text("")
    raw = (FIXTURES / "posttooluse_bash.json").read_bytes()
    out = hook.run(raw, script=POST, env={"SENTINEL_AUDIT_DIR": str(not_a_dir)})
    assert (out.returncode, out.stdout, out.stderr) == (0, "", "")


def test_post_hook_logs_the_real_fixture(hook: Hook) -> None:
    raw = (FIXTURES / "posttooluse_bash.json").read_bytes()
    out = hook.run(raw, script=POST, cwd="/")
    assert (out.returncode, out.stdout, out.stderr) == (0, "", "")
    ev = hook.last()
    assert ev["event"] == "post" and ev["outcome"] == "success" and ev["duration_ms"] == 27
    assert ev["tool_use_id"] == "toolu_a459f8b593f9431aa6851eca" and ev["subject"] == "rm -rf /home/dev/project/victim"
    assert ev["input_sha256"] == hashlib.sha256(raw).hexdigest()


@pytest.mark.parametrize(("response", "outcome"), [
    ({"stdout": "", "stderr": "warning: x", "interrupted": False}, "success"),
    ({"stdout": "", "stderr": "", "interrupted": True}, "interrupted"),
    ({"is_error": True, "content": "Exit code 1"}, "error"),
    ({"error": "File does not exist."}, "error"),
    ({"success": False}, "error"),
    ({"exitCode": 127}, "error"),
    ("plain text result", "success"),
])
def test_post_hook_outcomes(hook: Hook, response: Any, outcome: str) -> None:
    payload = {**bash("make test"), "hook_event_name": "PostToolUse", "tool_response": response, "duration_ms": 1500}
    assert hook.run(payload, script=POST).returncode == 0
    ev = hook.last()
    assert (ev["outcome"], ev["duration_ms"]) == (outcome, 1500)


# ------------------------------------------------------------------------------------------------- imports

@pytest.mark.parametrize("script", [PRE, POST], ids=["pre", "post"])
@pytest.mark.parametrize("flags", [FLAGS, ()], ids=["installed", "plain"])
def test_hooks_import_nothing_heavy(hook: Hook, script: Path, flags: tuple[str, ...]) -> None:
    out = hook.run(bash("ls -la"), script=script, flags=(*flags, "-X", "importtime"))
    assert out.returncode == 0
    modules = {ln.rsplit("|", 1)[1].strip() for ln in out.stderr.splitlines() if ln.startswith("import time:")}
    assert "services.sentinel.hookio" in modules
    heavy = sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))
    assert heavy == [], heavy


# ------------------------------------------------------------------------------- approvals and spool, directly

def test_approval_files_single_use_and_private(tmp_path: Path) -> None:
    h = "ab" * 32
    path = Path(approvals.grant(h, "admin-1", alert_id=7, directory=str(tmp_path)))
    assert path == tmp_path / f"{h}.json" and (path.stat().st_mode & 0o777) == 0o600
    rec = json.loads(path.read_text())
    assert rec["approver"] == "admin-1" and rec["alert_id"] == 7 and rec["call_hash"] == h
    ttl = approvals.parse_time(rec["expires_at"]) - approvals.parse_time(rec["approved_at"])  # type: ignore[operator]
    assert abs(ttl - 900) < 1
    assert approvals.decision(h, directory=str(tmp_path)) == "allow"
    assert approvals.consume(h, directory=str(tmp_path)) == "admin-1"
    assert approvals.consume(h, directory=str(tmp_path)) is None
    assert list(tmp_path.iterdir()) == []

    approvals.grant(h, "admin-1", directory=str(tmp_path))
    approvals.deny(h, "admin-2", directory=str(tmp_path))  # Keep blocked withdraws the approval
    assert approvals.decision(h, directory=str(tmp_path)) == "deny"
    assert approvals.consume(h, directory=str(tmp_path)) is None
    approvals.clear_denial(h, directory=str(tmp_path))
    assert approvals.decision(h, directory=str(tmp_path)) is None

    with pytest.raises(ValueError):
        approvals.grant("../../etc/passwd", "x", directory=str(tmp_path))


def test_tampered_or_foreign_approvals_are_ignored(tmp_path: Path) -> None:
    h, other = "cd" * 32, "ef" * 32
    (tmp_path / f"{h}.json").write_text(json.dumps({"call_hash": other, "approver": "x",
                                                     "expires_at": "2999-01-01T00:00:00Z"}))
    assert approvals.consume(h, directory=str(tmp_path)) is None
    (tmp_path / f"{h}.json").write_text("not json")
    assert approvals.consume(h, directory=str(tmp_path)) is None
    (tmp_path / f"{h}.json").write_text(json.dumps({"approver": "x", "expires_at": "2999-01-01T00:00:00Z"}))
    assert approvals.consume(h, directory=str(tmp_path)) == "x"


@pytest.mark.parametrize(("text", "epoch"), [
    ("1970-01-01T00:00:00Z", 0.0),
    ("1970-01-01T00:00:00", 0.0),
    ("2000-03-01T12:30:15.250000+00:00", 951913815.25),
    ("2000-03-01T14:30:15+02:00", 951913815.0),
    ("2024-02-29 23:59:59-01:00", 1709254799.0),
    (1700000000, 1700000000.0),
    ("yesterday", None),
    ("2024-13-45T99:00:00Z", None),
    (None, None),
    (True, None),
])
def test_parse_time(text: Any, epoch: float | None) -> None:
    got = approvals.parse_time(text)
    assert got == (None if epoch is None else pytest.approx(epoch))


def test_spool_roundtrip(tmp_path: Path) -> None:
    from services.sentinel import spool

    path = spool.write_alert({"call_hash": "x", "rule_id": "r"}, str(tmp_path))
    assert isinstance(path, Path) and path.parent == tmp_path and (path.stat().st_mode & 0o777) == 0o600
    second = spool.write_alert({"call_hash": "y", "rule_id": "r"}, str(tmp_path))
    (tmp_path / "zz-corrupt.json").write_text("{")
    pending = spool.pending_alerts(str(tmp_path))
    assert [p for p, _ in pending] == [path, second]
    assert pending[0][1]["call_hash"] == "x" and len(pending[0][1]["id"]) == 32 and pending[0][1]["ts"]
    assert (tmp_path / "zz-corrupt.json.bad").exists()
    spool.ack(path)
    spool.ack(path)  # twice is fine
    assert [p for p, _ in spool.pending_alerts(str(tmp_path))] == [second]
