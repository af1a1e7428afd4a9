"""SENTINEL's hash-chained audit log: the chain verifies, and every kind of tampering is caught at the right line."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from services.sentinel import audit
from services.sentinel.redact import redact, redact_subject

ROOT = Path(__file__).resolve().parents[1]


def _fill(d: Path, n: int) -> Path:
    for i in range(n):
        audit.append({"event": "pre", "tool_name": "Bash", "decision": "allow", "subject": f"echo {i}"}, str(d))
    files = audit.day_files(str(d))
    assert len(files) == 1
    return d / files[0]


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


def _write(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(line + b"\n" for line in lines))


def test_chain_verifies_with_counts(tmp_path: Path) -> None:
    f = _fill(tmp_path, 5)
    res = audit.verify(str(tmp_path))
    assert res.ok, str(res)
    assert (res.files, res.lines) == (1, 5)
    recs = [json.loads(x) for x in _lines(f)]
    assert [r["seq"] for r in recs] == [1, 2, 3, 4, 5]
    assert recs[0]["prev"] == "0" * 64
    for before, rec, raw in zip(recs, recs[1:], _lines(f), strict=False):
        assert rec["prev"] == audit.line_hash(raw)
        assert before["seq"] + 1 == rec["seq"]
    assert "ok" in str(res)


def test_empty_dir_is_ok(tmp_path: Path) -> None:
    assert audit.verify(str(tmp_path / "none")).ok


def test_modified_line_is_reported(tmp_path: Path) -> None:
    f = _fill(tmp_path, 6)
    lines = _lines(f)
    lines[2] = lines[2].replace(b'"decision":"allow"', b'"decision":"block"')
    _write(f, lines)
    res = audit.verify(str(tmp_path))
    assert not res.ok
    assert (res.kind, res.file, res.line) == ("modified", str(f), 3), str(res)


def test_invalid_json_line_is_reported(tmp_path: Path) -> None:
    f = _fill(tmp_path, 4)
    lines = _lines(f)
    lines[1] = lines[1][:-5]
    _write(f, lines)
    res = audit.verify(str(tmp_path))
    assert (res.ok, res.kind, res.line) == (False, "modified", 2), str(res)


def test_deleted_line_is_reported(tmp_path: Path) -> None:
    f = _fill(tmp_path, 6)
    lines = _lines(f)
    del lines[3]
    _write(f, lines)
    res = audit.verify(str(tmp_path))
    assert (res.ok, res.kind, res.line) == (False, "deleted", 4), str(res)
    assert "seq 4" in (res.problem or "")


def test_inserted_line_is_reported(tmp_path: Path) -> None:
    f = _fill(tmp_path, 6)
    lines = _lines(f)
    fake = json.loads(lines[2])
    fake.update(subject="rm -rf /", decision="allow", seq=4)
    lines.insert(3, json.dumps(fake, separators=(",", ":")).encode())
    _write(f, lines)
    res = audit.verify(str(tmp_path))
    assert (res.ok, res.kind, res.line) == (False, "inserted", 4), str(res)


def test_duplicated_line_is_reported(tmp_path: Path) -> None:
    f = _fill(tmp_path, 6)
    lines = _lines(f)
    lines.insert(1, lines[4])
    _write(f, lines)
    res = audit.verify(str(tmp_path))
    assert (res.ok, res.kind, res.line) == (False, "inserted", 2), str(res)


def test_reordered_lines_are_reported(tmp_path: Path) -> None:
    f = _fill(tmp_path, 6)
    lines = _lines(f)
    lines[2], lines[3] = lines[3], lines[2]
    _write(f, lines)
    res = audit.verify(str(tmp_path))
    assert (res.ok, res.kind, res.line) == (False, "reordered", 3), str(res)


def test_line_moved_to_the_end_is_reported(tmp_path: Path) -> None:
    f = _fill(tmp_path, 6)
    lines = _lines(f)
    lines.append(lines.pop(1))
    _write(f, lines)
    res = audit.verify(str(tmp_path))
    assert (res.ok, res.kind, res.line) == (False, "reordered", 2), str(res)


def test_cut_off_tail_and_modified_last_line_are_reported(tmp_path: Path) -> None:
    f = _fill(tmp_path, 5)
    original = f.read_bytes()
    _write(f, _lines(f)[:-2])  # the chain alone cannot see this; the head file can
    res = audit.verify(str(tmp_path))
    assert (res.ok, res.kind, res.line) == (False, "deleted", 3), str(res)

    lines = original.splitlines()
    lines[-1] = lines[-1].replace(b"echo 4", b"echo X")
    _write(f, lines)
    res = audit.verify(str(tmp_path))
    assert (res.ok, res.kind, res.line) == (False, "modified", 5), str(res)


def test_torn_last_line_is_reported_and_writers_go_on(tmp_path: Path) -> None:
    f = _fill(tmp_path, 3)
    with open(f, "ab") as fh:
        fh.write(b'{"event":"pre","tool_na')
    res = audit.verify(str(tmp_path))
    assert (res.ok, res.kind, res.line) == (False, "truncated", 4), str(res)
    audit.append({"event": "pre", "subject": "after the tear"}, str(tmp_path))
    assert _lines(f)[-1].startswith(b'{"event":"pre","subject":"after the tear"')
    assert audit.verify(str(tmp_path)).kind == "modified"  # the torn line stays visible


def test_chain_continues_across_days(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = time.time
    monkeypatch.setattr(audit.time, "time", lambda: real() - 86400)
    audit.append({"event": "pre", "subject": "yesterday 1"}, str(tmp_path))
    audit.append({"event": "pre", "subject": "yesterday 2"}, str(tmp_path))
    monkeypatch.setattr(audit.time, "time", real)
    audit.append({"event": "pre", "subject": "today"}, str(tmp_path))
    names = audit.day_files(str(tmp_path))
    assert len(names) == 2
    first_today = json.loads(_lines(tmp_path / names[1])[0])
    assert first_today["seq"] == 3
    assert first_today["prev"] == audit.line_hash(_lines(tmp_path / names[0])[-1])
    res = audit.verify(str(tmp_path))
    assert res.ok and (res.files, res.lines) == (2, 3), str(res)
    assert [e["subject"] for e in audit.read_events(str(tmp_path))] == ["yesterday 1", "yesterday 2", "today"]
    assert [e["subject"] for e in audit.read_events(str(tmp_path), day=names[1][:10])] == ["today"]

    # Deleting yesterday's file breaks the chain at today's first line.
    (tmp_path / names[0]).unlink()
    res = audit.verify(str(tmp_path))
    assert (res.ok, res.kind, res.line, res.file) == (False, "deleted", 1, str(tmp_path / names[1])), str(res)
    assert audit.verify(str(tmp_path), allow_missing_start=True).ok


_WRITER = """
import sys
sys.path.insert(0, sys.argv[1])
from services.sentinel import audit
for i in range(int(sys.argv[3])):
    audit.append({"event": "pre", "writer": sys.argv[4], "i": i, "subject": "x" * 300}, sys.argv[2])
"""


def test_parallel_writers_keep_one_chain(tmp_path: Path) -> None:
    procs = [subprocess.Popen([sys.executable, "-I", "-S", "-c", _WRITER, str(ROOT), str(tmp_path), "100", str(w)])
             for w in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    res = audit.verify(str(tmp_path))
    assert res.ok and res.lines == 400, str(res)
    events = list(audit.read_events(str(tmp_path)))
    assert [e["seq"] for e in events] == list(range(1, 401))
    assert sorted((e["writer"], e["i"]) for e in events) == sorted((str(w), i) for w in range(4) for i in range(100))


def test_files_are_private(tmp_path: Path) -> None:
    d = tmp_path / "audit"
    f = _fill(d, 1)
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert stat.S_IMODE((d / audit.HEAD).stat().st_mode) == 0o600
    assert stat.S_IMODE(d.stat().st_mode) == 0o700


def test_unwritable_log_raises(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(audit.AuditError, match=r"cannot write audit log at .*fix the directory"):
        audit.append({"event": "pre"}, str(blocker / "audit"))


def test_lone_surrogates_do_not_break_a_line(tmp_path: Path) -> None:
    audit.append({"event": "pre", "subject": "bad \udc80 text"}, str(tmp_path))
    (rec,) = audit.read_events(str(tmp_path))
    assert rec["subject"] == "bad \udc80 text"
    assert audit.verify(str(tmp_path)).ok


# Obviously fake keys, assembled at test time so no secret-shaped literal sits in the repository.
_FILL = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
FAKE_ANTHROPIC = "sk-" + "ant-api03-" + _FILL
SECRETS = {
    "anthropic-key": FAKE_ANTHROPIC,
    "openai-key": "sk-" + "proj-" + _FILL[:26],
    "aws-key": "AK" + "IA" + "FAKEFAKEFAKE0000",
    "github-token": "gh" + "p_" + _FILL,
    "slack-token": "xo" + "xb-123456789012-abcdefghijkl",
    "google-key": "AI" + "zaSyA1234567890abcdefghijklmnopqrstu",
    "stripe-key": "sk_" + "live_" + _FILL[:20],
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlX2hlcmU",
}
FAKE_PEM = ("-----BEGIN OPENSSH " + "PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH " + "PRIVATE KEY-----")


@pytest.mark.parametrize("rule", sorted(SECRETS))
def test_provider_keys_are_redacted(rule: str) -> None:
    secret = SECRETS[rule]
    out = redact(f"curl -s https://api.example.com -d '{secret}' | jq .")
    assert secret not in out
    assert f"[REDACTED:{rule}]" in out


@pytest.mark.parametrize(("text", "secret", "rule"), [
    ("psql postgres://admin:hunter2@db.example.com/prod -c 'select 1'", "hunter2", "url-password"),
    ("PASSWORD=hunter2 ./deploy.sh", "hunter2", "assignment"),
    ("echo 'token: abc123def456' >> ci.yml", "abc123def456", "assignment"),
    ("export DB_PASSWORD='p4ss w0rd'", "p4ss w0rd", "assignment"),
    ("curl -H 'Authorization: Bearer abcdefghijklmnop1234' https://x", "abcdefghijklmnop1234", "bearer"),
    ("mysql -uroot -phunter2 shop", "hunter2", "cli-password"),
    ("curl -u alice:s3cr3tpw https://x", "s3cr3tpw", "user-password"),
    (f"printf '%s' '{FAKE_PEM}'", "b3BlbnNzaC1rZXk", "private-key"),
])
def test_other_secrets_are_redacted(text: str, secret: str, rule: str) -> None:
    out = redact(text)
    assert secret not in out, out
    assert f"[REDACTED:{rule}]" in out, out


@pytest.mark.parametrize("text", ["ls -la", "git log --author=alice", 'echo "$TOKEN"', "pytest -k test_token -q",
                                  "grep -r password_reset src/", "sort -k 2 file"])
def test_ordinary_commands_are_left_alone(text: str) -> None:
    assert redact(text) == text


def test_subject_is_redacted_before_it_is_cut() -> None:
    text = "x" * 490 + " " + FAKE_ANTHROPIC
    out = redact_subject(text, 500)
    assert len(out) <= 500 and "sk-ant-api03-AbC" not in out
    assert "sk-ant" not in out


def test_secrets_in_commands_are_redacted_in_the_hook_log(tmp_path: Path) -> None:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path / "home"),
           "AISTACK_HOME": str(tmp_path / "aistack"), "SENTINEL_AUDIT_DIR": str(tmp_path / "audit"),
           "SENTINEL_DAEMON": "off"}
    command = (f"curl -H 'x-api-key: {SECRETS['anthropic-key']}' https://api.example.com "
               "&& PGPASSWORD=hunter2 psql -h db -c 'select 1'")
    payload = {"session_id": "s", "tool_use_id": "t", "cwd": str(tmp_path), "permission_mode": "default",
               "hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"command": command}}
    subprocess.run([sys.executable, "-I", "-S", str(ROOT / "hooks" / "pre_tool_use.py")],
                   input=json.dumps(payload).encode(), env=env, capture_output=True, timeout=30)
    log = b"".join(p.read_bytes() for p in (tmp_path / "audit").glob("*.jsonl")).decode()
    assert log, "the hook wrote no audit line"
    assert SECRETS["anthropic-key"] not in log and "hunter2" not in log
    assert "[REDACTED:anthropic-key]" in log and "PGPASSWORD=[REDACTED:assignment]" in log


_N = 65536
ADVERSARIAL = {
    "dots-then-keyword": ("a." * (_N // 2))[: _N - 10] + "password",
    "word-then-keyword": "a" * (_N - 10) + " password",
    "keyword-no-value": "secret " * (_N // 7),
    "unterminated-quotes": "password='" * (_N // 10),
    "url-no-at": "a://" + "b" * (_N // 2) + ":" + "c" * (_N // 2 - 10),
    "many-mysql": "mysql " * (_N // 6),
    "many-flags": "--password " * (_N // 11),
    "pem-no-end": "-----BEGIN " + "A " * (_N // 2 - 10),
    "user-no-colon": " -u " + "a" * _N,
    "many-bearer": "bearer " * (_N // 7),
}


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_redaction_cannot_be_made_slow(name: str) -> None:
    """Redaction runs on every call before the deadline: no input may make a pattern backtrack for long."""
    t = time.perf_counter()
    redact_subject(ADVERSARIAL[name])
    assert time.perf_counter() - t < 0.5
