"""SENTINEL judge: the corpus (tests/sentinel_corpus/*.jsonl) in-process, the policy loader, user overrides."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from services.sentinel.judge import explain, judge
from services.sentinel.model import ToolCall
from services.sentinel.policy import PolicyError, check_policy, load_policy

CORPUS_DIR = Path(__file__).parent / "sentinel_corpus"
DEFAULT_ENV = {"HOME": "/home/dev", "TMPDIR": "/tmp"}
DEFAULT_CWD = "/home/dev/project"


def _cases() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []
    for path in sorted(CORPUS_DIR.glob("*.jsonl")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                case = json.loads(line)
                case.setdefault("id", f"{path.stem}:{n}")
                case["_where"] = f"{path.name}:{n}"
                cases.append(case)
    return cases


CASES = _cases()
POLICY = load_policy(None)
_RESULTS: dict[str, tuple[str, str, str | None, str | None]] = {}  # id → (expect, got, rule, got rule)


def _call(case: dict[str, Any]) -> ToolCall:
    tool_input = case.get("tool_input")
    return ToolCall(str(case.get("tool_name", "")), tool_input if isinstance(tool_input, dict) else {},
                    cwd=case.get("cwd") or DEFAULT_CWD)


def _env(monkeypatch: pytest.MonkeyPatch, case: dict[str, Any]) -> None:
    env = dict(DEFAULT_ENV)
    env.update(case.get("env") or {})
    for key in ("HOME", "TMPDIR"):
        if env.get(key):
            monkeypatch.setenv(key, env[key])
        else:
            monkeypatch.delenv(key, raising=False)


@pytest.mark.parametrize("case", CASES, ids=[str(c["id"]) for c in CASES])
def test_corpus(case: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    _env(monkeypatch, case)
    call = _call(case)
    verdict = judge(call, POLICY)
    got_rule = verdict.top.rule_id if verdict.top else None
    expect = case["expect"]
    _RESULTS[str(case["id"])] = (expect, verdict.decision, case.get("rule"), got_rule)
    detail = f"{case['_where']} {case.get('note', '')}\n{explain(call, POLICY)}"
    assert verdict.decision == expect, detail
    if expect != "allow" and case.get("rule"):
        assert got_rule == case["rule"], detail


def test_corpus_recall_and_precision(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Block recall (every must-block blocked) and allow precision (every allow verdict on a must-allow)."""
    blocks = allowed_right = allowed_total = caught = 0
    for case in CASES:
        _env(monkeypatch, case)
        decision = judge(_call(case), POLICY).decision
        if case["expect"] == "block":
            blocks += 1
            caught += decision == "block"
        if decision == "allow":
            allowed_total += 1
            allowed_right += case["expect"] == "allow"
    recall = caught / blocks if blocks else 1.0
    precision = allowed_right / allowed_total if allowed_total else 1.0
    with capsys.disabled():
        print(f"\nSENTINEL corpus: {len(CASES)} cases, block recall {recall:.1%} ({caught}/{blocks}), "
              f"allow precision {precision:.1%} ({allowed_right}/{allowed_total})")
    assert recall == 1.0
    assert precision == 1.0


def test_judge_is_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/dev")
    call = ToolCall("Bash", {"command": "cd /home/dev/project && git status && ls -la | grep py"},
                    cwd="/home/dev/project")
    judge(call, POLICY)
    t0 = time.perf_counter()
    for _ in range(200):
        judge(call, POLICY)
    per_call = (time.perf_counter() - t0) / 200
    assert per_call < 0.005, per_call


# ------------------------------------------------------------------------------------------------ policy

def _write(tmp_path: Path, text: str, name: str = "mine.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _bash(command: str, policy: Any, cwd: str = DEFAULT_CWD) -> Any:
    return judge(ToolCall("Bash", {"command": command}, cwd=cwd), policy)


@pytest.fixture(autouse=True)
def _home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/dev")
    monkeypatch.setenv("TMPDIR", "/tmp")


def test_default_policy_loads_with_every_rule() -> None:
    ids = {r.id for r in POLICY.rules}
    for rid in ("rm-recursive-force", "find-delete", "interpreter-rmtree", "git-reset-hard", "git-force-push",
                "git-clean-force", "git-discard-worktree", "git-history-destroy", "sql-drop", "secret-file-read",
                "system-credentials", "download-to-shell", "block-device-write", "chmod-777-recursive", "fork-bomb",
                "unparseable-destructive", "env-file-access", "hook-bypass"):
        assert rid in ids
    assert len(POLICY.hash) == 64
    assert load_policy(None).hash == POLICY.hash


def test_relax_a_rule_to_allow(tmp_path: Path) -> None:
    assert _bash("git reset --hard HEAD~1", POLICY).decision == "block"
    relaxed = load_policy(_write(tmp_path, '[[rule]]\nid = "git-reset-hard"\nseverity = "allow"\n'))
    assert _bash("git reset --hard HEAD~1", relaxed).decision == "allow"
    disabled = load_policy(_write(tmp_path, '[[rule]]\nid = "git-reset-hard"\nenabled = false\n', "b.toml"))
    assert _bash("git reset --hard HEAD~1", disabled).decision == "allow"
    assert relaxed.hash != POLICY.hash


def test_raise_env_file_access_to_block(tmp_path: Path) -> None:
    assert _bash("cat .env", POLICY).decision == "warn"
    strict = load_policy(_write(tmp_path, '[[rule]]\nid = "env-file-access"\nseverity = "block"\n'
                                          'reason = "no env files here"\n'))
    verdict = _bash("cat .env", strict)
    assert verdict.decision == "block" and verdict.top is not None and verdict.top.reason == "no env files here"


def test_approve_severity(tmp_path: Path) -> None:
    pol = load_policy(_write(tmp_path, '[[rule]]\nid = "git-force-push"\nseverity = "approve"\n'))
    assert _bash("git push --force origin main", pol).decision == "approve"


def test_add_command_rule(tmp_path: Path) -> None:
    pol = load_policy(_write(tmp_path, '[[rule]]\nid = "no-push"\nclass = "command"\nseverity = "block"\n'
                                       'reason = "no pushing today"\nalternative = "open a pull request"\n'
                                       'params = { program = "git", args = ["push"] }\n'))
    verdict = _bash("git push origin main", pol)
    assert verdict.decision == "block" and verdict.top is not None and verdict.top.rule_id == "no-push"
    assert _bash("sudo git -C /x push", pol).decision == "block"
    assert _bash("git pull", pol).decision == "allow"
    flags = load_policy(_write(tmp_path, '[[rule]]\nid = "no-verbose-ls"\nclass = "command"\nseverity = "warn"\n'
                                         'reason = "r"\nparams = { program = ["ls"], args = ["-l"] }\n', "f.toml"))
    assert _bash("ls -la", flags).decision == "warn"
    assert _bash("ls -a", flags).decision == "allow"


def test_add_path_and_pattern_rules(tmp_path: Path) -> None:
    pol = load_policy(_write(tmp_path, '[[rule]]\nid = "no-prod"\nclass = "path"\nseverity = "block"\n'
                                       'reason = "production config"\nparams = { globs = ["**/config/prod/**"] }\n'
                                       '[[rule]]\nid = "no-terraform-destroy"\nclass = "pattern"\nseverity = "warn"\n'
                                       'reason = "r"\nparams = { regex = "terraform\\\\s+destroy" }\n'))
    assert _bash("cat config/prod/db.yml", pol).decision == "block"
    assert judge(ToolCall("Edit", {"file_path": "config/prod/db.yml"}, cwd=DEFAULT_CWD), pol).decision == "block"
    assert _bash("cat config/dev/db.yml", pol).decision == "allow"
    assert _bash("terraform destroy -auto-approve", pol).decision == "warn"


@pytest.mark.parametrize(("text", "needle"), [
    ('[[rule]]\nid = "x"\nclass = "command"\nseverity = "maybe"\nreason = "?"\n', "maybe"),
    ('[[rule]]\nid = "x"\nclass = "nope"\nseverity = "block"\nreason = "?"\n', "unknown class"),
    ('[[rule]]\nid = "x"\nclass = "command"\nseverity = "block"\nreason = "?"\ncolour = 1\n', "unknown key"),
    ('[[rule]]\nid = "x"\nclass = "pattern"\nseverity = "block"\nreason = "?"\nparams = { regex = "(" }\n',
     "bad regex"),
    ('[[rule]]\nid = "x"\nclass = "command"\nseverity = "block"\nreason = "?"\nparams = { program = "a" }\n'
     '[[rule]]\nid = "x"\nclass = "command"\nseverity = "block"\nreason = "?"\nparams = { program = "a" }\n',
     "duplicate"),
    ('[[rule]]\nid = "x"\nclass = "command"\nseverity = "block"\nreason = 3\nparams = { program = "a" }\n',
     "reason must be a string"),
    ('[[rule]]\nid = "x"\nclass = "command"\nseverity = "block"\nreason = "?"\nparams = { program = "a", y = 1 }\n',
     "unknown param"),
    ('[[rule]]\nid = "x"\nclass = "command"\nseverity = "block"\nreason = "?"\nparams = { program = "a" }\n'
     'enabled = "yes"\n', "enabled"),
    ('[[rule]]\nid = "x"\nclass = "rm-recursive-force"\nseverity = "block"\nreason = "?"\n', "generic class"),
    ('[[rule]]\nid = "git-reset-hard"\nclass = "command"\n', "class cannot change"),
    ('[[rule]\nid = "x"\n', "not valid TOML"),
])
def test_broken_user_policy_names_file_and_rule(tmp_path: Path, text: str, needle: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    message = str(info.value)
    assert "mine.toml" in message and needle in message and "\n" not in message
    if "TOML" not in needle:
        assert "'x'" in message or "'git-reset-hard'" in message
    assert check_policy(path) == [message]


def test_missing_user_policy_fails(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="not found"):
        load_policy(tmp_path / "absent.toml")


def test_check_policy_ok(tmp_path: Path) -> None:
    assert check_policy(_write(tmp_path, '[[rule]]\nid = "hook-bypass"\nseverity = "block"\n')) == []


def test_non_string_inputs_do_not_crash() -> None:
    for tool, ti in (("Bash", {"command": 3}), ("Read", {"file_path": None}), ("Glob", {"pattern": ["x"]}),
                     ("mcp__db__query", {"sql": {"a": 1}}), ("WebFetch", {"url": 7})):
        assert judge(ToolCall(tool, ti, cwd=DEFAULT_CWD), POLICY).decision == "allow"


def test_explain_lists_commands_findings_and_decision() -> None:
    text = explain(ToolCall("Bash", {"command": "cd /tmp && sudo rm -rf x; rm -rf /srv"}, cwd=DEFAULT_CWD), POLICY)
    assert "via: sudo" in text and "cwd: /tmp" in text
    assert "[rm-recursive-force]" in text and text.rstrip().endswith("decision: block [rm-recursive-force]")
