"""The SENTINEL corpus through the real PreToolUse hook process: exit code, output and audit line for every case.

Cases live in tests/sentinel_corpus/*.jsonl, one JSON object per line:
`{"id", "tool_name", "tool_input", "cwd", "expect": "block"|"warn"|"allow", "rule", "note"}`, optionally
`"env"` (extra environment for the hook), `"permission_mode"`, or `"raw"` (stdin verbatim, for malformed input).
All cases run once, concurrently, in a session fixture; each case is then its own test. The last test prints
block recall and allow precision and requires both to be 100%.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRE = ROOT / "hooks" / "pre_tool_use.py"
CORPUS = ROOT / "tests" / "sentinel_corpus"
FLAGS = ("-I", "-S")
WORKERS = 4
BLOCK_RE = re.compile(r"^SENTINEL blocked \[(?P<rule>[a-z0-9][a-z0-9.-]*)\]: (?P<text>.+?)"
                      r"(?: To allow once, approve code (?P<code>[0-9A-F]{6})\.)?$")
WARN_RE = re.compile(r"^SENTINEL warning \[(?P<rule>[a-z0-9][a-z0-9.-]*)\]: .+")


def load_cases() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []
    for f in sorted(CORPUS.glob("*.jsonl")):
        for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip() or line.lstrip().startswith("//"):
                continue
            case = json.loads(line)
            case.setdefault("id", f"{f.stem}:{n}")
            case["_where"] = f"{f.name}:{n}"
            cases.append(case)
    return cases


CASES = load_cases()


def stdin_of(case: dict[str, Any]) -> bytes:
    if "raw" in case:
        raw = case["raw"]
        return raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else bytes(raw)
    return json.dumps({
        "session_id": "corpus-session", "transcript_path": "/home/dev/.claude/projects/-home-dev-project/c.jsonl",
        "cwd": case.get("cwd") or "/home/dev/project", "permission_mode": case.get("permission_mode", "default"),
        "hook_event_name": "PreToolUse", "tool_name": case["tool_name"], "tool_input": case["tool_input"],
        "tool_use_id": f"toolu_corpus_{case['id']}"}).encode()


@dataclass
class Result:
    case: dict[str, Any]
    stdin: bytes
    code: int
    stdout: str
    stderr: str
    event: dict[str, Any] | None = None

    @property
    def decision(self) -> str:
        """What the hook did, as the corpus names it."""
        if self.code == 2:
            return "block"
        if self.code == 0 and self.stdout.strip():
            return "warn"
        if self.code == 0 and not self.stdout.strip() and not self.stderr.strip():
            return "allow"
        return f"exit {self.code}"


@pytest.fixture(scope="session")
def results() -> Iterator[dict[str, Result]]:
    with tempfile.TemporaryDirectory(prefix="sentinel-corpus-") as tmp:
        base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/home/dev", "LANG": "C.UTF-8",
                "AISTACK_HOME": f"{tmp}/aistack", "SENTINEL_AUDIT_DIR": f"{tmp}/audit",
                "SENTINEL_DAEMON": "off"}  # tests/test_judge_daemon.py runs the corpus through the daemon

        def run(case: dict[str, Any]) -> Result:
            stdin = stdin_of(case)
            env = {**base, **{str(k): str(v) for k, v in (case.get("env") or {}).items()}}
            out = subprocess.run([sys.executable, *FLAGS, str(PRE)], input=stdin, capture_output=True, env=env,
                                 cwd=tmp, timeout=60)
            return Result(case, stdin, out.returncode, out.stdout.decode(errors="replace"),
                          out.stderr.decode(errors="replace"))

        with ThreadPoolExecutor(WORKERS) as pool:
            done = list(pool.map(run, CASES))
        by_sha: dict[str, dict[str, Any]] = {}
        for f in sorted(Path(tmp, "audit").glob("*.jsonl")):
            for line in f.read_text().splitlines():
                ev = json.loads(line)
                by_sha[ev["input_sha256"]] = ev
        for r in done:
            r.event = by_sha.get(hashlib.sha256(r.stdin).hexdigest())
        yield {r.case["id"]: r for r in done}


def test_corpus_is_there() -> None:
    assert len(CASES) >= 100, f"expected several hundred cases in {CORPUS}, found {len(CASES)}"
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    assert {c["expect"] for c in CASES} <= {"block", "warn", "allow"}


@pytest.mark.parametrize("case_id", [c["id"] for c in CASES])
def test_case(results: dict[str, Result], case_id: str) -> None:
    r = results[case_id]
    case = r.case
    what = f"{case.get('tool_name')} {json.dumps(case.get('tool_input'))}"
    why = f"{case['_where']} {case_id} ({case.get('note', '')}): {what}"
    expect = case["expect"]
    assert r.code in (0, 2), f"{why}: exit {r.code}: {r.stderr}"
    assert r.decision == expect, f"{why}: expected {expect}, got {r.decision}: {r.stderr or r.stdout}"
    ev = r.event
    assert ev is not None, f"{why}: no audit line"
    assert ev["event"] == "pre", why
    rule = case.get("rule")
    if expect == "block":
        lines = r.stderr.splitlines()
        assert len(lines) == 1 and r.stdout == "", f"{why}: {r.stderr!r} {r.stdout!r}"
        m = BLOCK_RE.match(lines[0])
        assert m, f"{why}: {lines[0]}"
        assert ev["decision"] == "block" and ev["rule_id"] == m["rule"], why
        if rule:
            assert m["rule"] == rule, f"{why}: rule {m['rule']}, expected {rule}"
        if not m["rule"].startswith("sentinel-"):
            assert m["code"] == ev.get("code"), why
    elif expect == "warn":
        data = json.loads(r.stdout)
        mode = case.get("permission_mode", "default")
        if mode in ("default", "acceptEdits", "plan"):
            spec = data["hookSpecificOutput"]
            assert spec["permissionDecision"] == "ask" and spec["hookEventName"] == "PreToolUse", why
            text, logged = spec["permissionDecisionReason"], "ask"
        else:
            text, logged = data["systemMessage"], "warn"
        m = WARN_RE.match(text)
        assert m, f"{why}: {text}"
        assert ev["decision"] == logged and ev["rule_id"] == m["rule"], why
        if rule:
            assert m["rule"] == rule, f"{why}: rule {m['rule']}, expected {rule}"
    else:
        assert ev["decision"] == "allow" and "approved_by" not in ev, why


def test_block_recall_and_allow_precision(results: dict[str, Result]) -> None:
    rs = list(results.values())
    must_block = [r for r in rs if r.case["expect"] == "block"]
    blocked = [r for r in must_block if r.decision == "block"]
    allowed = [r for r in rs if r.decision == "allow"]
    rightly_allowed = [r for r in allowed if r.case["expect"] == "allow"]
    warns = [r for r in rs if r.case["expect"] == "warn"]
    warned = [r for r in warns if r.decision == "warn"]
    recall = len(blocked) / len(must_block) if must_block else 1.0
    precision = len(rightly_allowed) / len(allowed) if allowed else 1.0
    print(f"\nSENTINEL corpus: {len(rs)} cases through the real hook process")
    print(f"  block recall:    {len(blocked)}/{len(must_block)} = {recall:.1%}")
    print(f"  allow precision: {len(rightly_allowed)}/{len(allowed)} = {precision:.1%}")
    print(f"  warn accuracy:   {len(warned)}/{len(warns)}")
    missed = [r.case["id"] for r in must_block if r.decision != "block"]
    slipped = [r.case["id"] for r in allowed if r.case["expect"] != "allow"]
    assert recall == 1.0, f"must-block cases not blocked: {missed}"
    assert precision == 1.0, f"allowed although not expected to be: {slipped}"
