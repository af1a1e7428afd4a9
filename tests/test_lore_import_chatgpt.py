"""ChatGPT export importer against the synthetic fixture (facts from shared/fixtures/lore/README.md, section 3)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import orjson
import pytest

from services.lore.importers import MODULES, ImportFailed, Report, Unit
from services.lore.importers.chatgpt import IMPORTER, iso_time
from services.lore.model import Session

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "lore"
EXPORT = FIXTURES / "chatgpt_conversations.json"
BRANCHED = "68d2a7e4-3b1c-8001-a9d8-7f6e5d4c3b22"
LINEAR = "68d1f0c2-9a4b-8001-b3e2-1c5d7e9f0a11"


def _import(path: Path, report: Report | None = None) -> dict[str, Session]:
    units = IMPORTER.discover(path)
    assert len(units) == 1
    parsed = IMPORTER.parse(units[0], report or Report(), {})
    return {s.native_id: s for s in parsed.sessions}


@pytest.fixture(scope="module")
def sessions() -> dict[str, Session]:
    return _import(EXPORT)


def test_registered_under_chatgpt() -> None:
    # registry() imports every platform's module; this checks only what this module is responsible for.
    assert "chatgpt" in MODULES
    assert (IMPORTER.platform, IMPORTER.version, IMPORTER.incremental) == ("chatgpt", "1", False)


def test_two_conversations_with_titles_and_times(sessions: dict[str, Session]) -> None:
    assert set(sessions) == {BRANCHED, LINEAR}
    b, a = sessions[BRANCHED], sessions[LINEAR]
    assert b.title == "Postgres autovacuum tuning"
    assert b.started == "2026-03-15T09:20:00.500Z"
    assert b.ended == "2026-03-15T09:24:11.500Z"
    assert a.title == "Regex for ISO dates"
    assert a.started == "2026-03-14T09:20:00.125Z"
    assert a.ended == "2026-03-14T09:20:09.875Z"
    assert all(s.platform == "chatgpt" and s.importer_version == "1" for s in sessions.values())


def test_no_token_counts_means_no_calls(sessions: dict[str, Session]) -> None:
    assert all(s.calls == [] for s in sessions.values())


def test_branched_main_thread_is_the_visible_path(sessions: dict[str, Session]) -> None:
    main = [m for m in sessions[BRANCHED].messages if m.thread == "main"]
    assert [(m.id, m.role, m.model) for m in main] == [
        ("b-u1", "user", None), ("b-a1-new", "assistant", "gpt-4o"),
        ("b-u2", "user", None), ("b-a2", "assistant", "o3")]
    assert [m.parent for m in main] == [None, "b-u1", "b-a1-new", "b-u2"]
    assert main[0].time == "2026-03-15T09:20:02.500Z"
    assert not any("OLD-BRANCH" in m.text() for m in main)
    assert sessions[BRANCHED].models() == ["gpt-4o", "o3"]


def test_abandoned_branch_kept_as_one_alternate(sessions: dict[str, Session]) -> None:
    alt = [m for m in sessions[BRANCHED].messages if m.thread != "main"]
    assert {m.thread for m in alt} == {"alternate:1"}
    assert [m.id for m in alt] == ["b-a1-old", "b-u2-old", "b-a2-old", "b-u3-old", "b-a3-old"]
    assert alt[0].parent == "b-u1"  # hangs off the prompt it answered
    assert all(m.text().startswith("OLD-BRANCH:") for m in alt)


def test_thoughts_become_thinking_on_the_o3_answer(sessions: dict[str, Session]) -> None:
    msgs = sessions[BRANCHED].messages
    ids = {m.id for m in msgs}
    assert not ids & {"client-created-root", "b-sys", "b-think", "b-recap"}
    thinking = [(m.id, b) for m in msgs for b in m.content if b["type"] == "thinking"]
    assert len(thinking) == 1
    mid, block = thinking[0]
    assert mid == "b-a2"
    assert block["text"].startswith("Per-table reloptions override")
    answer = next(m for m in msgs if m.id == "b-a2")
    assert [b["type"] for b in answer.content] == ["thinking", "text"]
    assert answer.meta == {"reasoning_recap": "Thought for 7 seconds"}


def test_linear_multimodal_prompt(sessions: dict[str, Session]) -> None:
    msgs = sessions[LINEAR].messages
    assert [(m.role, m.model, m.thread) for m in msgs] == [("user", None, "main"), ("assistant", "gpt-4o", "main")]
    user = msgs[0]
    texts = [b["text"] for b in user.content if b["type"] == "text"]
    assert texts == ["This screenshot shows log lines like 2026-03-14T09:12:03Z. "
                     "Give me a regex that matches just the ISO date part."]
    attachments = [b for b in user.content if b["type"] == "attachment"]
    assert attachments == [{"type": "attachment", "ref": "file-service://file-LoreImg7c2Q", "name": None,
                            "kind": "image"}]


def test_file_totals(sessions: dict[str, Session]) -> None:
    main = [m for s in sessions.values() for m in s.messages if m.thread == "main"]
    blocks = [b["type"] for m in main for b in m.content]
    assert (len(main), blocks.count("thinking"), blocks.count("attachment")) == (6, 1, 1)


def test_iso_time_keeps_milliseconds() -> None:
    assert iso_time(1773566400.5) == "2026-03-15T09:20:00.500Z"
    assert iso_time(1773480000.125) == "2026-03-14T09:20:00.125Z"
    assert iso_time(None) is None


@pytest.mark.parametrize("inner", ["conversations.json", "export-2026-03-15/conversations.json"])
def test_zip_export_and_folder(tmp_path: Path, sessions: dict[str, Session], inner: str) -> None:
    zpath = tmp_path / "chatgpt-export.zip"
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("chat.html", "<html></html>")
        zf.write(EXPORT, inner)
    (tmp_path / "unrelated.zip").write_bytes(b"not a zip at all")
    from_zip = _import(zpath)
    assert set(from_zip) == set(sessions)
    assert [m.id for m in from_zip[BRANCHED].messages] == [m.id for m in sessions[BRANCHED].messages]
    assert from_zip[BRANCHED].sources[0].path == str(zpath)
    assert [u.paths for u in IMPORTER.discover(tmp_path)] == [[zpath]]  # the unrelated zip is not an export


def test_folder_with_extracted_export(tmp_path: Path) -> None:
    (tmp_path / "export").mkdir()
    target = tmp_path / "export" / "conversations.json"
    target.write_bytes(EXPORT.read_bytes())
    assert IMPORTER.discover(tmp_path) == [Unit("chatgpt", [target])]


def test_truncated_export_fails_with_a_clear_sentence(tmp_path: Path) -> None:
    raw = EXPORT.read_bytes()
    cut = tmp_path / "conversations.json"
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ImportFailed) as exc:
        _import(cut)
    msg = str(exc.value)
    assert str(cut) in msg
    assert "truncated" in msg
    assert "re-download the export" in msg


def test_zip_without_export_or_corrupt_zip_fails(tmp_path: Path) -> None:
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("readme.txt", "nothing here")
    corrupt = tmp_path / "corrupt.zip"
    corrupt.write_bytes(b"PK\x03\x04 truncated download")
    for path, why in ((empty, "has no conversations.json"), (corrupt, "not a readable zip")):
        with pytest.raises(ImportFailed, match="re-download the export") as exc:
            IMPORTER.parse(Unit("chatgpt", [path]), Report(), {})
        assert str(path) in str(exc.value)
        assert why in str(exc.value)


def test_malformed_conversation_is_skipped_and_reported(tmp_path: Path) -> None:
    data = orjson.loads(EXPORT.read_bytes())
    broken = {"title": "no tree", "id": "68d0aaaa-0000-8001-0000-000000000000", "mapping": None}
    path = tmp_path / "conversations.json"
    path.write_bytes(orjson.dumps([data[0], broken, "not a conversation", data[1]]))
    report = Report()
    imported = _import(path, report)
    assert set(imported) == {BRANCHED, LINEAR}
    assert len(report.bad_lines) == 2
    assert report.bad_lines[0].startswith(f"{path}:1: ")
    assert report.bad_lines[1].startswith(f"{path}:2: ")


def test_regenerated_answers_each_get_their_own_alternate(tmp_path: Path) -> None:
    """Three answers to one prompt: the chosen one in main, the two others as alternate:1 and alternate:2."""
    def node(nid: str, parent: str | None, kids: list[str], role: str, text: str) -> dict[str, object]:
        msg = {"id": nid, "author": {"role": role}, "create_time": 1773566400.0,
               "content": {"content_type": "text", "parts": [text]}, "metadata": {}}
        return {"id": nid, "parent": parent, "children": kids, "message": msg}

    conv = {"id": "c1", "title": "t", "create_time": 1773566400.0, "current_node": "a3", "mapping": {
        "u": node("u", None, ["a1", "a2", "a3"], "user", "q"),
        "a1": node("a1", "u", [], "assistant", "first"),
        "a2": node("a2", "u", [], "assistant", "second"),
        "a3": node("a3", "u", [], "assistant", "third")}}
    path = tmp_path / "conversations.json"
    path.write_bytes(orjson.dumps([conv]))
    msgs = _import(path)["c1"].messages
    assert [(m.id, m.thread) for m in msgs] == [("u", "main"), ("a3", "main"),
                                                ("a1", "alternate:1"), ("a2", "alternate:2")]
