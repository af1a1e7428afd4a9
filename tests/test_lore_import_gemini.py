"""Gemini Takeout importer against the synthetic fixture (facts from shared/fixtures/lore/README.md, section 4)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import orjson
import pytest

from services.lore.importers import MODULES, ImportFailed, Report, Unit
from services.lore.importers.gemini import GAP_ENV, IMPORTER, html_to_text
from services.lore.model import Session

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "lore"
TAKEOUT = FIXTURES / "gemini_takeout.json"
OLDEST = "What is wrong with this chart?"
MIDDLE = "Explain the difference between a mutex and a semaphore in two sentences."
NEWEST = 'Rewrite this for a non-technical reader: "The service retries idempotent requests with exponential backoff."'


def _import(path: Path, report: Report | None = None) -> list[Session]:
    units = IMPORTER.discover(path)
    assert len(units) == 1
    return IMPORTER.parse(units[0], report or Report(), {}).sessions


def _prompts(s: Session) -> list[str]:
    return [b["text"] for m in s.messages if m.role == "user" for b in m.content if b["type"] == "text"]


@pytest.fixture
def sessions(monkeypatch: pytest.MonkeyPatch) -> list[Session]:
    monkeypatch.delenv(GAP_ENV, raising=False)
    return _import(TAKEOUT)


def test_registered_under_gemini() -> None:
    # registry() imports every platform's module; this checks only what this module is responsible for.
    assert "gemini" in MODULES
    assert (IMPORTER.platform, IMPORTER.version, IMPORTER.incremental) == ("gemini", "1", False)


def test_three_prompts_in_two_sessions(sessions: list[Session]) -> None:
    assert len(orjson.loads(TAKEOUT.read_bytes())) == 4
    assert [_prompts(s) for s in sessions] == [[OLDEST, MIDDLE], [NEWEST]]
    first, second = sessions
    assert (first.started, first.ended) == ("2026-03-15T08:01:02.448Z", "2026-03-15T08:07:31.015Z")
    assert (second.started, second.ended) == ("2026-03-17T18:40:12.331Z", "2026-03-17T18:40:12.331Z")
    assert first.title == OLDEST


def test_feedback_is_not_a_message(sessions: list[Session]) -> None:
    texts = [m.text() for s in sessions for m in s.messages]
    assert not any("Gave feedback" in t for t in texts)
    # It followed the mutex answer by 24 seconds: noted there, and nowhere else.
    assert [m.meta for m in sessions[0].messages] == [{}, {}, {}, {"feedback": ["Good response"]}]


def test_responses_are_plain_text_first_draft_main(sessions: list[Session]) -> None:
    first, second = sessions
    main = [(m.role, m.thread) for m in first.messages]
    assert main == [("user", "main"), ("assistant", "main"), ("user", "main"), ("assistant", "main")]
    assert first.messages[1].text() == ("The y-axis starts at 40 instead of 0, which exaggerates the difference "
                                        "between the bars.\n\n- Start the axis at 0\n- Label the units")
    assert first.messages[3].text() == ("A mutex lets exactly one thread own a resource at a time.\n\n"
                                        "A semaphore keeps a counter, so up to N threads may proceed at once.")
    prompt, response, draft = second.messages
    assert (response.thread, response.parent) == ("main", prompt.id)
    assert response.text().startswith("If a request fails")
    assert (draft.thread, draft.parent, draft.role) == ("alternate:1", prompt.id, "assistant")
    assert draft.text().startswith("When something goes wrong")


def test_attachment_on_the_oldest_prompt_and_gem_noted(sessions: list[Session]) -> None:
    oldest = sessions[0].messages[0]
    assert [b for b in oldest.content if b["type"] == "attachment"] == [
        {"type": "attachment", "ref": "image_4f2a1c-8d2e1b9c0a7f3e65.png", "name": "image_4f2a1c.png",
         "kind": "image"}]
    assert [b["text"] for b in oldest.content if b["type"] == "text"] == [OLDEST]
    assert sessions[0].extra == {"gems": ["Code Tutor"]}
    assert sessions[1].extra == {}


def test_nothing_unknown_is_made_up(sessions: list[Session]) -> None:
    assert all(s.calls == [] and s.models() == [] for s in sessions)


def test_ids_are_stable_and_survive_a_larger_export(tmp_path: Path, sessions: list[Session]) -> None:
    first_ids = [(s.native_id, [m.id for m in s.messages]) for s in sessions]
    assert sessions[0].native_id.startswith("20260315T080102448Z-")
    entries = orjson.loads(TAKEOUT.read_bytes())
    later = {"header": "Gemini Apps", "title": "Prompted And one more thing", "time": "2026-03-17T18:55:00.000Z",
             "safeHtmlItem": [{"html": "<p>Sure.</p>"}]}
    path = tmp_path / "MyActivity.json"
    path.write_bytes(orjson.dumps([later, *entries]))
    again = _import(path)
    assert [(s.native_id, [m.id for m in s.messages][: len(ids)]) for s, (_, ids) in zip(again, first_ids,
                                                                                          strict=True)] == first_ids
    assert len(again[1].messages) == 5  # the new prompt joined the existing session


def test_custom_gap_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(GAP_ENV, "5")
    assert [len(_prompts(s)) for s in _import(TAKEOUT)] == [1, 1, 1]
    monkeypatch.setenv(GAP_ENV, "10")
    assert [len(_prompts(s)) for s in _import(TAKEOUT)] == [2, 1]


def test_bad_gap_setting_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(GAP_ENV, "soon")
    with pytest.raises(ImportFailed, match=GAP_ENV):
        _import(TAKEOUT)


def test_truncated_json_fails_with_a_clear_sentence(tmp_path: Path) -> None:
    raw = TAKEOUT.read_bytes()
    cut = tmp_path / "MyActivity.json"
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ImportFailed) as exc:
        _import(cut)
    msg = str(exc.value)
    assert str(cut) in msg
    assert "truncated" in msg
    assert "re-download the Takeout export" in msg


def test_malformed_entry_is_skipped_and_reported(tmp_path: Path) -> None:
    entries = orjson.loads(TAKEOUT.read_bytes())
    path = tmp_path / "My Activity.json"
    path.write_bytes(orjson.dumps([entries[0], {"title": "Prompted no time"}, *entries[1:]]))
    report = Report()
    assert sum(len(_prompts(s)) for s in _import(path, report)) == 3
    assert report.bad_lines == [f"{path}:1: entry skipped: no time"]


def test_takeout_zip_and_folder(tmp_path: Path, sessions: list[Session]) -> None:
    zpath = tmp_path / "takeout-20260318T000000Z-001.zip"
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("Takeout/My Activity/Search/MyActivity.json", "[]")
        zf.write(TAKEOUT, "Takeout/My Activity/Gemini Apps/MyActivity.json")
    from_zip = _import(zpath)
    assert [s.native_id for s in from_zip] == [s.native_id for s in sessions]
    assert from_zip[0].sources[0].path == str(zpath)

    folder = tmp_path / "extracted" / "Takeout" / "My Activity"
    (folder / "Gemini Apps").mkdir(parents=True)
    (folder / "Search").mkdir()
    (folder / "Search" / "MyActivity.json").write_text("[]")
    target = folder / "Gemini Apps" / "MyActivity.json"
    target.write_bytes(TAKEOUT.read_bytes())
    assert IMPORTER.discover(tmp_path / "extracted") == [Unit("gemini", [target])]


def test_html_to_text() -> None:
    html = "<h2>Steps &amp; notes</h2><p>one  <b>two</b>\n three<br>four</p><pre><code>if x:\n    y()</code></pre>" \
           "<ol><li>a</li><li>b</li></ol>"
    assert html_to_text(html) == "Steps & notes\n\none two three\nfour\n\nif x:\n    y()\n\n1. a\n2. b"
