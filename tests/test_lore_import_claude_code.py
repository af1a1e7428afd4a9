"""Claude Code importer: the fixture's documented facts, every subagent layout, a generated corpus checked against
the generator's own token sums, malformed lines, and incremental reads."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from services.lore.importers import Parsed, Report, Unit
from services.lore.importers import claude_code as cc
from services.lore.model import Message, Session

SHARED = Path(__file__).resolve().parents[2] / "shared"
FIXTURE = SHARED / "fixtures" / "lore" / "claude_code_session.jsonl"
GENERATOR = SHARED / "tools" / "gen_claude_corpus.py"
SID = "7f3c9a2e-4b1d-4e8a-9c6f-2d5e8b1a0c34"
SONNET, HAIKU = "claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001"


def _parse(paths: list[Path], offsets: dict[str, int] | None = None, report: Report | None = None,
           sid: str = SID) -> tuple[Session, Parsed]:
    parsed = cc.parse(Unit("claude_code", paths, sid), report or Report(), offsets or {})
    assert len(parsed.sessions) == 1
    return parsed.sessions[0], parsed


def _fixture_lines() -> list[bytes]:
    return FIXTURE.read_bytes().splitlines(keepends=True)


def _thread(s: Session, name: str) -> list[Message]:
    return [m for m in s.messages if m.thread == name]


def _types(m: Message) -> list[str]:
    return [b["type"] for b in m.content]


def _is_prompt(m: Message) -> bool:
    return m.role == "user" and "text" in _types(m) and "tool_result" not in _types(m)


def _sums(s: Session, thread_prefix: str = "") -> tuple[int, ...]:
    calls = [c for c in s.calls if c.thread.startswith(thread_prefix)]
    return tuple(sum(c.usage.as_tuple()[i] or 0 for c in calls) for i in range(4))


def _line(obj: dict[str, Any]) -> bytes:
    return orjson.dumps(obj) + b"\n"


# --- the fixture -------------------------------------------------------------------------------------------------


def test_fixture_threads_and_logical_messages() -> None:
    s, _ = _parse([FIXTURE])
    main, side = _thread(s, "main"), _thread(s, "sidechain:a3f9c2d1")
    assert {m.thread for m in s.messages} == {"main", "sidechain:a3f9c2d1"}  # no alternates
    # 8 main-chain records; lines 4+5 share message.id, so 7 logical messages in chain order
    assert [m.role for m in main] == ["user", "assistant", "user", "assistant", "system", "user", "assistant"]
    assert [m.role for m in main].count("assistant") == 3
    assert [m.role for m in side] == ["user", "assistant"]
    merged = main[1]
    assert merged.id == "msg_01LoreAq7Kp2VfD8sYtN3pXa" and _types(merged) == ["thinking", "tool_use"]
    assert merged.model == SONNET and merged.time == "2026-03-14T09:12:07.402Z"
    assert side[1].model == HAIKU and side[1].id == "msg_01LoreSz5Vn8UcW1rE7gHy@a3f9c2d1"
    assert sum(_is_prompt(m) for m in main) == 2 and sum(_is_prompt(m) for m in side) == 1
    assert main[0].content == [{"type": "text", "text": "tests/test_client.py::test_retry_backoff fails about 1 run in"
                                                        " 5. Find the cause and fix it."}]


def test_fixture_blocks_tool_pairing_and_parents() -> None:
    s, _ = _parse([FIXTURE])
    blocks = [b for m in s.messages for b in m.content]
    uses = [b for b in blocks if b["type"] == "tool_use"]
    results = [b for b in blocks if b["type"] == "tool_result"]
    thinking = [b for b in blocks if b["type"] == "thinking"]
    assert len(uses) == 1 and uses[0]["name"] == "Read" and uses[0]["id"] == "toolu_01LoreReadQ7mZ2vK9xW4pT"
    assert uses[0]["input"] == {"file_path": "/home/dev/projects/acme_api.v2/tests/test_client.py"}
    assert len(results) == 1 and results[0]["tool_use_id"] == uses[0]["id"] and results[0]["is_error"] is False
    assert results[0]["content"].startswith("     1→import time")  # list content joined to text
    assert thinking == [{"type": "thinking", "text": "The test probably depends on wall-clock time inside the "
                                                     "backoff loop; read the test first."}]  # signature dropped
    main = _thread(s, "main")
    assert [m.parent for m in main] == [None, main[0].id, main[1].id, main[2].id, main[3].id, main[4].id, main[5].id]
    system = main[4]
    assert system.meta == {"subtype": "turn_duration", "durationMs": 36892} and system.content == []
    assert s.denied_tool_calls == 0


def test_fixture_tokens_deduplicated() -> None:
    s, _ = _parse([FIXTURE])
    assert _sums(s, "main") == (19, 458, 3626, 42170)
    assert _sums(s, "sidechain:") == (420, 64, 0, 0)
    assert _sums(s) == (439, 522, 3626, 42170)
    assert [c.request_id for c in s.calls] == ["req_011LoreA1xYb9", "req_011LoreB2mQc4", "req_011LoreS1hT8e",
                                               "req_011LoreC3pLw7"]
    first = s.calls[0]  # the larger of the two streamed lines, linked to the merged message
    assert first.usage.output_tokens == 187 and first.message_id == "msg_01LoreAq7Kp2VfD8sYtN3pXa"
    assert {c.model for c in s.calls if c.thread == "main"} == {SONNET}
    assert [c.model for c in s.calls if c.thread != "main"] == [HAIKU]
    assert s.models() == [SONNET, HAIKU]


def test_fixture_session_facts() -> None:
    report = Report()
    s, parsed = _parse([FIXTURE], report=report)
    assert (s.platform, s.native_id, s.key) == ("claude_code", SID, f"claude_code:{SID}")
    assert s.title == "Fix flaky retry test in HTTP client"
    assert (s.started, s.ended) == ("2026-03-14T09:12:03.118Z", "2026-03-14T09:15:05.120Z")
    assert (s.cwd, s.git_branch, s.extra) == ("/home/dev/projects/acme_api.v2", "fix/retry-flake",
                                              {"cli_version": "2.0.31"})
    assert s.importer_version == cc.IMPORTER.version == "1"
    size = FIXTURE.stat().st_size
    assert parsed.offsets == {str(FIXTURE): size}
    assert [(f.path, f.size) for f in s.sources] == [(str(FIXTURE), size)] and len(s.sources[0].sha256) == 64
    assert report.bad_lines == [] and report.replaced_utf8 == 0 and report.errors == []
    assert (cc.IMPORTER.platform, cc.IMPORTER.incremental) == ("claude_code", True)


def test_title_falls_back_to_first_prompt(tmp_path: Path) -> None:
    path = tmp_path / f"{SID}.jsonl"
    long_prompt = "word " * 40
    path.write_bytes(b"".join(_fixture_lines()[1:]).replace(b"tests/test_client.py::test_retry_backoff fails",
                                                            long_prompt.encode()))
    s, _ = _parse([path])
    assert s.title == " ".join(long_prompt.split())[:80] and len(s.title) == 80


def test_title_prefers_rename_then_ai_title(tmp_path: Path) -> None:
    path = tmp_path / f"{SID}.jsonl"
    body = b"".join(_fixture_lines())
    path.write_bytes(body + _line({"type": "ai-title", "aiTitle": "Retry flake", "sessionId": SID}))
    assert _parse([path])[0].title == "Retry flake"
    path.write_bytes(body + _line({"type": "custom-title", "customTitle": "my name", "sessionId": SID})
                     + _line({"type": "ai-title", "aiTitle": "Retry flake", "sessionId": SID}))
    assert _parse([path])[0].title == "my name"


# --- discover ----------------------------------------------------------------------------------------------------


def _sideline(sid: str, agent: str, uuid: str, text: str = "sub") -> bytes:
    return _line({"parentUuid": None, "isSidechain": True, "sessionId": sid, "agentId": agent, "type": "user",
                  "uuid": uuid, "timestamp": "2026-03-14T09:13:00.000Z", "message": {"role": "user", "content": text}})


def test_discover_all_three_layouts_and_orphans(tmp_path: Path) -> None:
    proj = tmp_path / "projects" / "-home-dev-projects-acme-api-v2"
    proj.mkdir(parents=True)
    main = proj / f"{SID}.jsonl"
    main.write_bytes(FIXTURE.read_bytes())  # inline sidechain lines
    flat = proj / "agent-0badc0de.jsonl"
    flat.write_bytes(_sideline(SID, "0badc0de", "f-1"))
    nested = proj / SID / "subagents" / "agent-a1234567890abcdef.jsonl"
    nested.parent.mkdir(parents=True)
    nested.write_bytes(_sideline(SID, "a1234567890abcdef", "n-1"))
    orphan_sid, orphan2_sid = "11111111-2222-4333-8444-555555555555", "66666666-7777-4888-9999-000000000000"
    orphan = proj / "agent-feedface.jsonl"  # parent session file deleted
    orphan.write_bytes(b"{truncated\n" + _sideline(orphan_sid, "feedface", "o-1"))
    orphan2 = proj / orphan2_sid / "subagents" / "agent-b1.jsonl"
    orphan2.parent.mkdir(parents=True)
    orphan2.write_bytes(_sideline(orphan2_sid, "b1", "o-2"))
    (proj / "agent-empty.jsonl").write_bytes(b"")  # not attributable yet: picked up on a later import
    (proj / "notes.txt").write_text("not a transcript")
    (tmp_path / "projects" / "stray.jsonl").write_text("{}\n")  # files directly under projects/ are not sessions

    units = {u.native_id: u for u in cc.discover(tmp_path)}
    assert set(units) == {SID, orphan_sid, orphan2_sid}
    assert units[SID].paths[0] == main and sorted(units[SID].paths[1:]) == sorted([flat, nested])
    assert units[orphan_sid].paths == [orphan] and units[orphan2_sid].paths == [orphan2]
    assert all(u.platform == "claude_code" for u in units.values())

    s, _ = _parse(units[SID].paths)
    threads = {m.thread for m in s.messages}
    assert threads == {"main", "sidechain:a3f9c2d1", "sidechain:0badc0de", "sidechain:a1234567890abcdef"}
    o, _ = _parse(units[orphan_sid].paths, sid=orphan_sid)
    assert o.native_id == orphan_sid and [m.thread for m in o.messages] == ["sidechain:feedface"]
    assert cc.discover(tmp_path / "missing") == []


def test_discover_1000_sessions_is_fast(tmp_path: Path) -> None:
    proj = tmp_path / "projects" / "-srv-repos-big"
    proj.mkdir(parents=True)
    body = FIXTURE.read_bytes()
    for i in range(1000):
        sid = f"{i:08x}-0000-4000-8000-000000000000"
        (proj / f"{sid}.jsonl").write_bytes(body)
        if i % 5 == 0:
            (proj / f"agent-{i:08x}.jsonl").write_bytes(_sideline(sid, f"{i:08x}", f"u{i}") * 50)
    t0 = time.perf_counter()
    units = cc.discover(tmp_path)
    elapsed = time.perf_counter() - t0
    assert len(units) == 1000 and sum(len(u.paths) for u in units) == 1200
    assert elapsed < 0.5, f"discover took {elapsed:.3f}s"


# --- a generated corpus ------------------------------------------------------------------------------------------


def _generate(out: Path, *args: str) -> dict[str, Any]:
    subprocess.run([sys.executable, str(GENERATOR), "--out", str(out), *args], check=True, capture_output=True)
    return dict(json.loads((out / "expected.json").read_text()))


def _import_all(root: Path) -> tuple[dict[str, Session], Report]:
    report = Report()
    sessions: dict[str, Session] = {}
    for unit in cc.discover(root):
        s, parsed = _parse(unit.paths, report=report, sid=unit.native_id or "")
        assert set(parsed.offsets) == {str(p) for p in unit.paths}
        sessions[s.native_id] = s
    return sessions, report


def _expected(e: dict[str, Any]) -> tuple[int, ...]:
    return (e["input"], e["output"], e["cache_creation"], e["cache_read"])


@pytest.mark.parametrize("args", [
    ("--sessions", "40", "--mean-kb", "20", "--seed", "7"),
    ("--sessions", "60", "--mean-kb", "30", "--seed", "3", "--probe-rate", "0.3"),  # dense dedupe probes
])
def test_generated_corpus_matches_expected_tokens(tmp_path: Path, args: tuple[str, ...]) -> None:
    expected = _generate(tmp_path, *args)
    sessions, report = _import_all(tmp_path)
    assert set(sessions) == set(expected["sessions"])
    for sid, e in expected["sessions"].items():
        assert _sums(sessions[sid]) == _expected(e), sid
    totals = tuple(sum(_sums(s)[i] for s in sessions.values()) for i in range(4))
    assert totals == _expected(expected["totals"])
    assert expected["counts"]["probe_btw_replays"] > 0  # the rule probes are present, so the sums above test them
    if "--probe-rate" in args:
        assert expected["counts"]["probe_max_not_last_messages"] > 0
        assert _expected(expected["totals_alt_rules"]["keep_last"]) != totals
    assert _expected(expected["totals_alt_rules"]["no_replay_drop"]) != totals
    # malformed (truncated) lines: each reported once, as path:line of a line that really does not parse
    assert len(report.bad_lines) == expected["counts"]["bad_lines"] > 0
    for entry in report.bad_lines:
        path, lineno, _why = entry.split(":", 2)
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(Path(path).read_bytes().split(b"\n")[int(lineno) - 1])
    for s in sessions.values():  # a gap left by a malformed line does not push the chain into an alternate
        assert all(m.thread == "main" or m.thread.startswith("sidechain:") for m in s.messages), s.native_id
        assert s.title and s.started and s.ended and s.cwd
        replays = [m for m in s.messages if "aside_question" in m.thread and m.role == "assistant"]
        assert all(m.id.endswith("@" + m.thread.split(":", 1)[1]) for m in replays)


# --- malformed input ---------------------------------------------------------------------------------------------


def test_truncated_line_reported_with_absolute_line_number(tmp_path: Path) -> None:
    lines = _fixture_lines()
    path = tmp_path / f"{SID}.jsonl"
    lines[6] = lines[6][:120] + b"\n"  # line 7: the main-chain text answer, cut short
    path.write_bytes(b"".join(lines[:8]))
    report = Report()
    s, parsed = _parse([path], report=report)
    assert len(report.bad_lines) == 1 and report.bad_lines[0].startswith(f"{path}:7: malformed JSON")
    assert "msg_01LoreBw3Hd9TqR6nJ2kLs" not in {m.id for m in s.messages}
    # read on from the offset: a bad line in the tail still carries its line number from the file start
    with path.open("ab") as f:
        f.write(b"".join(lines[8:10]) + b'{"type":"user","uuid":\n' + b"".join(lines[10:]))
    report2 = Report()
    s2, _ = _parse([path], offsets=parsed.offsets, report=report2)
    assert len(report2.bad_lines) == 1 and report2.bad_lines[0].startswith(f"{path}:11: malformed JSON")
    assert [m.role for m in s2.messages if m.thread == "main"] == ["system", "user", "assistant"]
    assert _sums(s2, "main") == (4, 31, 96, 15370)


def test_invalid_utf8_is_replaced_and_counted(tmp_path: Path) -> None:
    lines = _fixture_lines()
    lines[2] = lines[2].replace(b"Find the cause", b"Find the \xff\xfe cause")
    lines[10] = lines[10].replace(b"Summarise the change", b"Summarise \\ud83d the change")  # lone surrogate
    path = tmp_path / f"{SID}.jsonl"
    path.write_bytes(b"".join(lines))
    report = Report()
    s, _ = _parse([path], report=report)
    assert report.replaced_utf8 == 2 and report.bad_lines == []
    texts = [m.text() for m in _thread(s, "main") if _is_prompt(m)]
    assert "Find the \ufffd\ufffd cause" in texts[0] and "Summarise ? the change" in texts[1]


# --- incremental reads -------------------------------------------------------------------------------------------


def test_incremental_read_returns_only_new_lines(tmp_path: Path) -> None:
    full, _ = _parse([FIXTURE])
    lines = _fixture_lines()
    path = tmp_path / f"{SID}.jsonl"
    path.write_bytes(b"".join(lines[:6]))  # summary .. the tool result
    first, p1 = _parse([path])
    assert p1.offsets == {str(path): len(b"".join(lines[:6]))}
    with path.open("ab") as f:
        f.write(b"".join(lines[6:]))
    second, p2 = _parse([path], offsets=p1.offsets)
    assert p2.offsets == {str(path): FIXTURE.stat().st_size}

    first_ids = ["c0de0001-1111-4aaa-8bbb-000000000001", "msg_01LoreAq7Kp2VfD8sYtN3pXa",
                 "c0de0004-1111-4aaa-8bbb-000000000004"]
    assert [m.id for m in first.messages] == first_ids
    assert [m.id for m in second.messages] == [m.id for m in full.messages if m.id not in first_ids]
    assert [m.thread for m in second.messages] == ["main"] * 4 + ["sidechain:a3f9c2d1"] * 2
    assert second.messages[0].parent == "c0de0004-1111-4aaa-8bbb-000000000004"  # a parent read last time
    for a, b in zip(second.messages, [m for m in full.messages if m.id not in first_ids], strict=True):
        assert (a.role, a.thread, a.content, a.time, a.model) == (b.role, b.thread, b.content, b.time, b.model)
    assert [c.request_id for c in first.calls] == ["req_011LoreA1xYb9"]
    assert [c.to_dict() for c in second.calls] == [c.to_dict() for c in full.calls[1:]]
    assert first.title == "Fix flaky retry test in HTTP client"  # the summary line, though its leaf comes later
    assert second.title is None  # nothing in the tail names the session: the archive keeps the title it has
    assert (second.started, second.ended) == ("2026-03-14T09:12:31.660Z", "2026-03-14T09:15:05.120Z")


def test_partially_written_last_line_is_left_for_next_time(tmp_path: Path) -> None:
    lines = _fixture_lines()
    path = tmp_path / f"{SID}.jsonl"
    path.write_bytes(b"".join(lines[:11]) + lines[11][:200])  # Claude is still writing the last line
    report = Report()
    first, p1 = _parse([path], report=report)
    assert report.bad_lines == []
    assert p1.offsets[str(path)] == len(b"".join(lines[:11]))
    assert "msg_01LoreCk8Rt2YxN4bM6fZq" not in {m.id for m in first.messages}
    with path.open("ab") as f:
        f.write(lines[11][200:])
    second, p2 = _parse([path], offsets=p1.offsets)
    assert [(m.id, m.thread, m.parent) for m in second.messages] == [
        ("msg_01LoreCk8Rt2YxN4bM6fZq", "main", "c0de0007-1111-4aaa-8bbb-000000000007")]
    assert [c.usage.as_tuple() for c in second.calls] == [(4, 31, 96, 15370)]
    assert second.title is None  # a tail's first prompt is not the session title
    assert p2.offsets[str(path)] == FIXTURE.stat().st_size
    third, p3 = _parse([path], offsets=p2.offsets)
    assert third.messages == [] and third.calls == [] and p3.offsets == p2.offsets


def test_incremental_corpus_halves_sum_to_the_whole(tmp_path: Path) -> None:
    src = tmp_path / "src"
    # with this seed the cut separates two /btw replays from the main-thread lines they copy
    expected = _generate(src, "--sessions", "12", "--mean-kb", "20", "--seed", "1", "--bad-rate", "0",
                         "--probe-rate", "0.3")
    for unit in cc.discover(src):
        sid = unit.native_id or ""
        whole, _ = _parse(unit.paths, sid=sid)
        dst = [tmp_path / "inc" / p.relative_to(src) for p in unit.paths]
        offsets: dict[str, int] = {}
        seen: dict[str, Message] = {}
        calls = []
        for frac in (0.5, 1.0):  # write half of every file, import, write the rest, import from the offsets
            for p, q in zip(unit.paths, dst, strict=True):
                q.parent.mkdir(parents=True, exist_ok=True)
                data = p.read_bytes()
                q.write_bytes(data[: int(len(data) * frac)])
            part, parsed = _parse(dst, offsets=offsets, sid=sid)
            offsets = parsed.offsets
            for m in part.messages:
                if m.id in seen:  # a streamed message split by the cut: the archive extends it
                    seen[m.id].content.extend(m.content)
                else:
                    seen[m.id] = m
            calls.extend(part.calls)
        assert set(seen) == {m.id for m in whole.messages}
        assert sum(len(m.content) for m in seen.values()) == sum(len(m.content) for m in whole.messages)
        best: dict[tuple[str | None, str | None], int] = {}  # the archive's call merge: same key, larger total
        for c in calls:
            key = (c.message_id, c.request_id)
            best[key] = max(best.get(key, 0), c.usage.total())
        assert sum(best.values()) == expected["sessions"][sid]["total"]


# --- threads and dedupe edge cases -------------------------------------------------------------------------------


def _rec(uuid: str, parent: str | None, kind: str = "user", **extra: Any) -> dict[str, Any]:
    d: dict[str, Any] = {"parentUuid": parent, "isSidechain": False, "sessionId": SID, "type": kind, "uuid": uuid,
                         "timestamp": f"2026-03-14T10:00:{len(uuid):02d}.000Z"}
    if kind == "user":
        d["message"] = {"role": "user", "content": f"prompt {uuid}"}
    d.update(extra)
    return d


def _asst(uuid: str, parent: str | None, mid: str | None, rid: str | None, usage: tuple[int, int, int, int],
          model: str = SONNET, **extra: Any) -> dict[str, Any]:
    u = dict(zip(("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"),
                 usage, strict=True))
    msg = {"model": model, "role": "assistant", "content": [{"type": "text", "text": f"answer {uuid}"}], "usage": u}
    if mid:
        msg["id"] = mid
    return _rec(uuid, parent, "assistant", message=msg, **({"requestId": rid} if rid else {}), **extra)


def test_rewound_branches_become_alternates(tmp_path: Path) -> None:
    recs = [_rec("u1", None), _asst("a1", "u1", "m1", "r1", (1, 1, 0, 0)),
            _rec("u2", "a1"), _asst("a2", "u2", "m2", "r2", (2, 2, 0, 0)),  # abandoned by a rewind to a1
            _rec("u3", "a1"), _asst("a3", "u3", "m3", "r3", (3, 3, 0, 0)),  # abandoned too
            _rec("u4", "a1"), _asst("a4", "u4", "m4", "r4", (4, 4, 0, 0)),
            {"type": "progress", "uuid": "p1", "parentUuid": "a4"},  # non-message lines still link the chain
            _rec("u5", "p1")]
    path = tmp_path / f"{SID}.jsonl"
    path.write_bytes(b"".join(_line(r) for r in recs))
    s, _ = _parse([path])
    threads = {m.id: m.thread for m in s.messages}
    assert [m.id for m in s.messages if m.thread == "main"] == ["u1", "m1", "u4", "m4", "u5"]
    assert threads["u2"] == threads["m2"] == "alternate:1" and threads["u3"] == threads["m3"] == "alternate:2"
    assert [m.id for m in s.messages] == ["u1", "m1", "u4", "m4", "u5", "u2", "m2", "u3", "m3"]
    assert {m.id: m.parent for m in s.messages}["u5"] == "m4"  # through the progress line
    assert len(s.calls) == 4 and {c.thread for c in s.calls} == {"main", "alternate:1", "alternate:2"}
    assert s.title == "prompt u1"


def test_btw_replay_synthetic_and_keyless_calls(tmp_path: Path) -> None:
    main = tmp_path / f"{SID}.jsonl"
    main.write_bytes(b"".join(_line(r) for r in [
        _rec("u1", None),
        _asst("a1", "u1", "mA", "rA", (5, 10, 100, 0)),
        _asst("a2", "a1", "mA", "rA", (5, 40, 100, 0)),  # same call, streamed: the larger line counts
        _asst("a3", "a2", "syn", None, (0, 0, 0, 0), model="<synthetic>"),
        _asst("a4", "a3", None, None, (1, 1, 1, 1)),  # no message.id: a call of its own
        _asst("a5", "a4", "mB", None, (2, 2, 2, 2)),  # no requestId: a call of its own
    ]))
    side = tmp_path / SID / "subagents" / "agent-aside_question-00ff.jsonl"
    side.parent.mkdir(parents=True)
    agent: dict[str, Any] = {"isSidechain": True, "agentId": "aside_question-00ff"}
    side.write_bytes(b"".join(_line(r) for r in [
        _rec("s1", None, **agent),
        _asst("s2", "s1", "mA", "rBTW", (5, 40, 100, 0), **agent),  # /btw replay of mA: dropped
        _asst("s3", "s2", "mS", "rS", (7, 8, 0, 9), **agent),
        _asst("s4", "s3", "mS", "rS", (7, 3, 0, 9), **agent),
    ]))
    s, _ = _parse([main, side])
    assert [(c.message_id, c.request_id, c.usage.as_tuple()) for c in s.calls] == [
        ("mA", "rA", (5, 40, 100, 0)), ("a4", None, (1, 1, 1, 1)), ("mB", None, (2, 2, 2, 2)),
        ("mS@aside_question-00ff", "rS", (7, 8, 0, 9))]
    by_id = {m.id: m for m in s.messages}
    assert by_id["syn"].model is None and by_id["syn"].meta == {"synthetic": True}
    assert "<synthetic>" not in s.models()
    assert by_id["mA"].thread == "main" and len(by_id["mA"].content) == 2
    replay = by_id["mA@aside_question-00ff"]  # kept as its own sidechain message, never merged into main
    assert replay.thread == "sidechain:aside_question-00ff" and len(replay.content) == 1


def test_denied_tool_calls(tmp_path: Path) -> None:
    def result(uuid: str, text: str, is_error: bool) -> dict[str, Any]:
        block = {"type": "tool_result", "tool_use_id": f"t-{uuid}", "content": [{"type": "text", "text": text}],
                 "is_error": is_error}
        return _rec(uuid, None, message={"role": "user", "content": [block]})

    path = tmp_path / f"{SID}.jsonl"
    path.write_bytes(b"".join(_line(r) for r in [
        result("d1", "The user doesn't want to proceed with this tool use. The tool use was rejected.", True),
        result("d2", "Permission to use Bash with command rm -rf build has been denied.", True),
        result("d3", "PreToolUse:Bash hook error: SENTINEL blocked: destructive command", True),
        result("ok1", "The user doesn't want to proceed", False),  # not flagged as an error: not a refusal
        result("ok2", "Exit code 1: tests failed", True),
    ]))
    s, _ = _parse([path])
    assert s.denied_tool_calls == 3


def test_image_blocks_become_attachments(tmp_path: Path) -> None:
    content = [{"type": "text", "text": "what is this?"},
               {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}]
    path = tmp_path / f"{SID}.jsonl"
    path.write_bytes(_line(_rec("u1", None, message={"role": "user", "content": content})))
    s, _ = _parse([path])
    att = s.messages[0].content[1]
    assert att["type"] == "attachment" and att["kind"] == "image" and att["ref"].startswith("sha256:")
    assert "iVBOR" not in json.dumps(s.messages[0].content)


def test_unreadable_subagent_file_is_reported_not_fatal(tmp_path: Path) -> None:
    report = Report()
    s, parsed = _parse([FIXTURE, tmp_path / "agent-gone.jsonl"], report=report)
    assert len(report.errors) == 1 and "agent-gone.jsonl" in report.errors[0]
    assert len(s.calls) == 4 and list(parsed.offsets) == [str(FIXTURE)]
    with pytest.raises(cc.ImportFailed):
        _parse([tmp_path / "gone.jsonl"])
