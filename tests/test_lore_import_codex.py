"""Codex CLI importer: the fixture's documented facts, discovery, incremental reads at every line boundary, malformed
lines, refusals and the pre-envelope rollout format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from services.lore.importers import Parsed, Report, Unit
from services.lore.importers import codex as cx
from services.lore.model import Message, Session

FIXTURE = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "lore" / "codex_rollout.jsonl"
SID = "0195a3c4-7e21-7b9d-8f10-3c2a4e5b6d71"
PROMPT = "Add a --dry-run flag to scripts/migrate.py that prints the SQL instead of executing it."
ANSWER = "Added --dry-run to scripts/migrate.py: when set, each statement is printed and no connection is opened."


def _parse(path: Path, offsets: dict[str, int] | None = None, report: Report | None = None) -> tuple[Session, Parsed]:
    parsed = cx.parse(Unit("codex", [path], SID), report or Report(), offsets or {})
    assert len(parsed.sessions) == 1
    return parsed.sessions[0], parsed


def _blocks(s: Session, kind: str) -> list[dict[str, Any]]:
    return [b for m in s.messages for b in m.content if b["type"] == kind]


def _text_messages(s: Session, role: str) -> list[Message]:
    return [m for m in s.messages if m.role == role and any(b["type"] == "text" for b in m.content)]


def _line(obj: dict[str, Any]) -> bytes:
    return orjson.dumps(obj) + b"\n"


def test_fixture_session_facts() -> None:
    report = Report()
    s, parsed = _parse(FIXTURE, report=report)
    assert (s.platform, s.native_id) == ("codex", SID)
    assert (s.cwd, s.git_branch, s.git_remote) == ("/home/dev/projects/acme_api.v2", "main",
                                                   "git@example.invalid:dev/acme_api.git")
    assert s.extra["cli_version"] == "0.58.0" and s.extra["git_commit"].startswith("9c1e4b7a")
    assert (s.started, s.ended) == ("2026-03-15T14:02:11.204Z", "2026-03-15T14:02:40.001Z")
    assert s.title == PROMPT[:80]
    assert s.models() == ["gpt-5-codex"] and s.importer_version == "1" and s.denied_tool_calls == 0
    assert parsed.offsets == {str(FIXTURE): FIXTURE.stat().st_size}
    assert [(f.path, f.size) for f in s.sources] == [(str(FIXTURE), FIXTURE.stat().st_size)]
    assert report.bad_lines == [] and report.replaced_utf8 == 0
    assert (cx.IMPORTER.platform, cx.IMPORTER.incremental) == ("codex", True)


def test_fixture_messages_from_response_items_only() -> None:
    s, _ = _parse(FIXTURE)
    users, answers = _text_messages(s, "user"), _text_messages(s, "assistant")
    assert [m.text() for m in users] == [PROMPT]  # <environment_context> skipped, event_msg copy ignored
    assert [m.text() for m in answers] == [ANSWER]  # agent_message event not counted again
    assert "<environment_context>" not in "".join(m.text() for m in s.messages)
    assert [m.id for m in s.messages] == ["L5", "L9", "L10", "L11", "L14", "L15", "L17"]  # absolute line numbers
    assert [m.role for m in s.messages] == ["user", "assistant", "assistant", "tool", "assistant", "tool", "assistant"]
    assert [m.parent for m in s.messages] == [None, "L5", "L9", "L10", "L11", "L14", "L15"]
    assert all(m.model == "gpt-5-codex" for m in s.messages if m.role == "assistant")
    assert _blocks(s, "thinking") == [{"type": "thinking", "text": "**Inspecting the migrate script**"}]
    assert "gAAAA" not in str([m.content for m in s.messages])  # encrypted reasoning is not kept


def test_fixture_tool_calls_paired_by_call_id() -> None:
    s, _ = _parse(FIXTURE)
    uses, results = _blocks(s, "tool_use"), _blocks(s, "tool_result")
    assert [(u["id"], u["name"]) for u in uses] == [("call_LoreShell01", "shell"), ("call_LorePatch02", "apply_patch")]
    assert uses[0]["input"] == {"command": ["bash", "-lc", "sed -n 1,80p scripts/migrate.py"],
                                "workdir": "/home/dev/projects/acme_api.v2"}  # JSON arguments decoded
    assert isinstance(uses[1]["input"], str) and uses[1]["input"].startswith("*** Begin Patch")
    assert [r["tool_use_id"] for r in results] == [u["id"] for u in uses]
    assert results[0]["content"].startswith("import argparse") and results[0]["is_error"] is False
    assert results[1]["content"].startswith("Success. Updated the following files:")


def test_fixture_tokens() -> None:
    s, _ = _parse(FIXTURE)
    assert len(s.calls) == 2  # info:null skipped, the repeated event skipped
    total = s.calls[0].usage.plus(s.calls[1].usage)
    assert total.as_tuple() == (3820, 905, 0, 14080)  # uncached input, output, cache write, cached input
    assert total.total() == 18805
    assert [c.usage.as_tuple() for c in s.calls] == [(1800, 310, 0, 6400), (2020, 595, 0, 7680)]
    assert [c.time for c in s.calls] == ["2026-03-15T14:02:27.690Z", "2026-03-15T14:02:39.994Z"]
    assert {c.model for c in s.calls} == {"gpt-5-codex"}


def test_discover(tmp_path: Path) -> None:
    day = tmp_path / "sessions" / "2026" / "03" / "15"
    day.mkdir(parents=True)
    a = day / f"rollout-2026-03-15T14-02-11-{SID}.jsonl"
    a.write_bytes(FIXTURE.read_bytes())
    (day / "notes.jsonl").write_text("{}\n")
    archived = tmp_path / "archived_sessions" / "rollout-2026-01-02T03-04-05-0195a3c4-0000-7000-8000-00000000abcd.jsonl"
    archived.parent.mkdir()
    archived.write_text("")
    odd = tmp_path / "sessions" / "2026" / "03" / "16" / "rollout-no-uuid.jsonl"
    odd.parent.mkdir(parents=True)
    odd.write_text("")
    units = cx.discover(tmp_path)
    assert [(u.paths, u.native_id) for u in units] == [
        ([a], SID), ([odd], None), ([archived], "0195a3c4-0000-7000-8000-00000000abcd")]
    assert all(u.platform == "codex" for u in units)
    assert cx.discover(tmp_path / "missing") == []


def test_incremental_at_every_line_boundary_matches_a_full_read(tmp_path: Path) -> None:
    full, _ = _parse(FIXTURE)
    lines = FIXTURE.read_bytes().splitlines(keepends=True)
    path = tmp_path / "rollout.jsonl"
    for k in range(len(lines) + 1):
        path.write_bytes(b"".join(lines[:k]))
        head, p1 = _parse(path)
        path.write_bytes(b"".join(lines))
        tail, p2 = _parse(path, offsets=p1.offsets)
        assert p2.offsets == {str(path): FIXTURE.stat().st_size}
        assert [m.id for m in head.messages] + [m.id for m in tail.messages] == [m.id for m in full.messages], k
        for a, b in zip(tail.messages, full.messages[len(head.messages):], strict=True):
            assert (a.role, a.content, a.time, a.model) == (b.role, b.content, b.time, b.model)
        # a token event repeated just after the cut is still recognised as a repeat
        got = [c.to_dict() for c in head.calls + tail.calls]
        assert got == [c.to_dict() for c in full.calls], k
        assert tail.native_id == SID and tail.extra.get("cli_version") == "0.58.0" and tail.git_branch == "main"
        assert tail.title is None or k == 0


def test_partially_written_line_waits(tmp_path: Path) -> None:
    lines = FIXTURE.read_bytes().splitlines(keepends=True)
    path = tmp_path / "rollout.jsonl"
    path.write_bytes(b"".join(lines[:17]) + lines[17][:40])
    report = Report()
    s, p1 = _parse(path, report=report)
    assert report.bad_lines == [] and len(s.calls) == 1
    assert p1.offsets[str(path)] == len(b"".join(lines[:17]))
    path.write_bytes(b"".join(lines))
    tail, _ = _parse(path, offsets=p1.offsets)
    assert [c.usage.as_tuple() for c in tail.calls] == [(2020, 595, 0, 7680)] and tail.messages == []


def test_bad_lines_and_invalid_utf8(tmp_path: Path) -> None:
    lines = FIXTURE.read_bytes().splitlines(keepends=True)
    lines[4] = lines[4].replace(b"prints the SQL", b"prints the \xe9 SQL")  # latin-1 byte: invalid UTF-8
    lines[16] = lines[16][:50] + b"\n"  # the assistant answer, truncated
    path = tmp_path / "rollout.jsonl"
    path.write_bytes(b"".join(lines[:10]))
    report = Report()
    s, p1 = _parse(path, report=report)
    assert report.replaced_utf8 == 1 and "prints the \ufffd SQL" in s.messages[0].text()
    path.write_bytes(b"".join(lines))
    tail, _ = _parse(path, offsets=p1.offsets, report=report)
    assert len(report.bad_lines) == 1 and report.bad_lines[0].startswith(f"{path}:17: malformed JSON")
    assert not _text_messages(tail, "assistant") and len(tail.calls) == 2


def test_refusals_errors_and_images(tmp_path: Path) -> None:
    def item(payload: dict[str, Any]) -> bytes:
        return _line({"timestamp": "2026-03-15T15:00:00.000Z", "type": "response_item", "payload": payload})

    path = tmp_path / "rollout.jsonl"
    path.write_bytes(b"".join([
        _line({"timestamp": "2026-03-15T15:00:00.000Z", "type": "session_meta", "payload": {"id": SID}}),
        item({"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "<permissions>"}]}),
        item({"type": "message", "role": "user", "content": [{"type": "input_text", "text": (
            "# AGENTS.md instructions for /x\n\n<INSTRUCTIONS>be nice</INSTRUCTIONS>")}]}),
        item({"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "look"},
            {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}]}),
        item({"type": "function_call", "name": "shell", "arguments": "{\"command\":[\"rm\",\"-rf\",\"x\"]}",
              "call_id": "c1"}),
        item({"type": "function_call_output", "call_id": "c1", "output": "exec command rejected by user"}),
        item({"type": "custom_tool_call", "name": "apply_patch", "input": "*** Begin Patch", "call_id": "c2"}),
        item({"type": "custom_tool_call_output", "call_id": "c2", "output": "patch rejected by user"}),
        item({"type": "function_call", "name": "shell", "arguments": "not json", "call_id": "c3"}),
        item({"type": "function_call_output", "call_id": "c3",
              "output": "{\"output\": \"boom\", \"metadata\": {\"exit_code\": 2}}"}),
        item({"type": "function_call_output", "call_id": "c4", "output": {"content": "no", "success": False}}),
    ]))
    s, _ = _parse(path)
    assert s.denied_tool_calls == 2
    assert [m.role for m in s.messages] == ["user", "assistant", "tool", "assistant", "tool", "assistant", "tool",
                                            "tool"]
    assert s.messages[0].content[1]["type"] == "attachment" and s.messages[0].content[1]["ref"].startswith("sha256:")
    results = _blocks(s, "tool_result")
    assert [(r["content"], r["is_error"]) for r in results][2:] == [("boom", True), ("no", True)]
    assert _blocks(s, "tool_use")[2]["input"] == "not json"
    assert s.title == "look"


def test_rollout_without_envelope(tmp_path: Path) -> None:
    path = tmp_path / "rollout-2025-05-01T10-00-00-old.jsonl"
    path.write_bytes(b"".join([
        _line({"id": SID, "timestamp": "2025-05-01T10:00:00.000Z", "instructions": None}),
        _line({"record_type": "state"}),
        _line({"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hello"}]}),
        _line({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "hi"}]}),
    ]))
    s, _ = _parse(path)
    assert s.native_id == SID and [(m.id, m.role, m.text()) for m in s.messages] == [
        ("L3", "user", "hello"), ("L4", "assistant", "hi")]


def test_unreadable_rollout_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(cx.ImportFailed, match="Cannot read Codex rollout"):
        _parse(tmp_path / "missing.jsonl")
