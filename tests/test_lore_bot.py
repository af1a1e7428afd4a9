"""LORE through Telegram: the real bot against the local Bot API emulator, on a real archive (the platform
fixtures imported by the real importers into per-client git repositories and the SQLite index).

Two clients hold sessions: acme (the Claude Code and Codex fixtures, by the clients file's path rule) and beta
(the ChatGPT export, dropped into the inbox folder `$LORE_ROOT/inbox/chatgpt/beta/`).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

import pytest

from bot.emulator import BotApiEmulator
from handlers import lore as lore_handlers
from services.digest import build_digest
from services.lore import report, service
from services.runtime import bootstrap
from services.settings import SettingsError, load_settings
from tests.bot_fixtures import ADMIN, TOKEN, BotHarness, make_settings
from tests.lore_fixtures import CLAUDE_SID, CODEX_SID, FIXTURES, LoreHome, make_home

CLAUDE_KEY = f"claude_code:{CLAUDE_SID}"
CODEX_KEY = f"codex:{CODEX_SID}"
CLAUDE_TITLE = "Fix flaky retry test in HTTP client"


class LoreBot(BotHarness):
    home: LoreHome

    async def press(self, message: Any, data: str, count: int = 1) -> list[Any]:
        """Press a button of a bot message and return the bot's next `count` messages to the admin."""
        before = len(self.emu.sent(ADMIN))
        self.emu.press_button(ADMIN, message.message_id, data)
        sent = await self.emu.wait_for_sent(before + count, chat_id=ADMIN)
        return sent[before:]

    def button(self, message: Any, label_start: str) -> str:
        return str(next(b["callback_data"] for b in message.buttons if b["text"].startswith(label_start)))


def lore_home(tmp: Path, *, adverse: bool = True) -> LoreHome:
    h = make_home(tmp)
    inbox = h.lore / "inbox" / "chatgpt" / "beta"
    inbox.mkdir(parents=True)
    shutil.copy(FIXTURES / "chatgpt_conversations.json", inbox / "conversations.json")
    if adverse:  # SENTINEL blocked one tool call of the Claude Code session: an adverse event in the archive
        h.audit.mkdir()
        ev = {"ts": "2026-03-14T09:13:00.000Z", "event": "pre", "decision": "block", "rule_id": "rm-recursive-force",
              "session_id": CLAUDE_SID, "tool_use_id": "toolu_x"}
        (h.audit / "2026-03-14.jsonl").write_text(json.dumps(ev) + "\n")
    return h


async def _stack(tmp_path: Path, *, imported: bool) -> AsyncIterator[LoreBot]:
    h = lore_home(tmp_path / "src")
    emu = BotApiEmulator(TOKEN, known_chats=(ADMIN,))
    await emu.start()
    rt = bootstrap(make_settings(tmp_path / "home", emu, lore_root=h.lore, claude_home=h.claude,
                                 codex_home=h.codex, sentinel_audit_dir=h.audit))
    if imported:
        summary = service.import_all(rt.settings)
        assert summary.errors == [] and dict(summary.added) == {"acme": 2, "beta": 2}, summary.to_dict()
    harness = LoreBot(emu, rt)
    harness.home = h
    await harness.start()
    try:
        yield harness
    finally:
        await harness.stop()
        await emu.stop()


@pytest.fixture
async def lore_bot(tmp_path: Path) -> AsyncIterator[LoreBot]:
    async for h in _stack(tmp_path, imported=True):
        yield h


@pytest.fixture
async def empty_lore_bot(tmp_path: Path) -> AsyncIterator[LoreBot]:
    async for h in _stack(tmp_path, imported=False):
        yield h


# ------------------------------------------------------------------------------------------------ /client

async def test_client_shows_the_default_switches_by_button_and_name_and_persists(lore_bot: LoreBot) -> None:
    [view] = await lore_bot.say("/client")
    assert "Current client: internal" in view.text  # unset: the clients file's default
    assert "Known clients: acme, beta, internal" in view.text
    assert [b["text"] for b in view.buttons] == ["acme", "beta", "✅ internal"]

    lore_bot.emu.press_button(ADMIN, view.message_id, lore_bot.button(view, "acme"))
    await lore_bot.emu.wait_until(lambda: "Current client: acme" in view.text)
    assert [b["text"] for b in view.buttons] == ["✅ acme", "beta", "internal"]
    assert lore_bot.emu.callback_answers[-1].get("text") == "Client: acme"
    assert report.stored_client(lore_bot.rt.engine, ADMIN) == "acme"

    [done] = await lore_bot.say("/client beta")
    assert "now works in client beta" in done.text
    await lore_bot.restart()  # a new process: the choice is in the database
    [view2] = await lore_bot.say("/client")
    assert "Current client: beta" in view2.text

    [bad] = await lore_bot.say("/client nope")
    assert "unknown client 'nope'; known clients: acme, beta, internal" in bad.text
    assert report.stored_client(lore_bot.rt.engine, ADMIN) == "beta"


# ------------------------------------------------------------------------------------------------ /search

async def test_search_shows_only_the_chat_clients_sessions_and_opens_a_hit(lore_bot: LoreBot) -> None:
    await lore_bot.say("/client acme")
    [res] = await lore_bot.say("/search retry")
    assert "in client acme" in res.text and CLAUDE_TITLE in res.text and CLAUDE_KEY in res.text
    assert "2026-03-14" in res.text
    bold = [res.text[e["offset"]:e["offset"] + e["length"]] for e in res.entities if e["type"] == "bold"]
    assert any("retry" in b.lower() for b in bold[2:]), bold  # the snippet's « » markers became bold
    assert "«" not in res.text and "»" not in res.text
    assert [b["callback_data"] for b in res.buttons] == [f"lore:open:{CLAUDE_KEY}"]
    assert all(len(b["callback_data"].encode()) <= 64 for b in res.buttons)

    summary, doc = await lore_bot.press(res, f"lore:open:{CLAUDE_KEY}", count=2)
    assert CLAUDE_TITLE in summary.text and "client: acme" in summary.text
    assert doc.kind == "document" and doc.filename == f"{CLAUDE_KEY}.yaml"

    # The same words in the other client find nothing of acme's.
    await lore_bot.say("/client beta")
    [none] = await lore_bot.say("/search retry")
    assert "No matches" in none.text and CLAUDE_KEY not in none.text
    [beta] = await lore_bot.say("/search autovacuum")
    assert "Postgres autovacuum tuning" in beta.text and "chatgpt:" in beta.text
    # A word both clients' sessions contain: beta's hits only.
    [both] = await lore_bot.say("/search the")
    assert "chatgpt:" in both.text and "claude_code:" not in both.text and "codex:" not in both.text

    # acme's old button, pressed while the chat works in beta, opens nothing.
    before = len(lore_bot.emu.sent(ADMIN))
    [refused] = await lore_bot.press(res, f"lore:open:{CLAUDE_KEY}")
    assert "no session" in refused.text and "for this client" in refused.text
    await asyncio.sleep(0.3)
    assert len(lore_bot.emu.sent(ADMIN)) == before + 1
    assert not any(m.kind == "document" for m in lore_bot.emu.sent(ADMIN)[before:])


async def test_search_needs_words_and_reports_bad_queries(lore_bot: LoreBot) -> None:
    [usage] = await lore_bot.say("/search")
    assert usage.text.startswith("Usage: /search")
    await lore_bot.say("/client acme")
    [none] = await lore_bot.say("/search autovacuum")
    assert "No matches" in none.text and "chatgpt:" not in none.text


# ------------------------------------------------------------------------------------------------ /session

async def test_session_sends_summary_first_exchange_and_the_yaml(lore_bot: LoreBot) -> None:
    await lore_bot.say("/client acme")
    summary, doc = await lore_bot.say(f"/session {CLAUDE_KEY}", count=2)
    t = summary.text
    assert CLAUDE_TITLE in t and f"key: {CLAUDE_KEY}" in t and "client: acme" in t
    assert "when: 2026-03-14 09:12 → 09:15 (UTC)" in t
    assert "claude-sonnet-4-5-20250929" in t and "claude-haiku-4-5-20251001" in t
    assert "tokens: in 439 · out 522 · cache write 3.6k · cache read 42k" in t
    assert "cost: $0." in t and "knowledge: hypothesis" in t and "adverse events: 1" in t
    assert "First prompt" in t and "First answer" in t
    assert any(e["type"] == "blockquote" for e in summary.entities)
    yaml_file = next(p for p in lore_bot.home.yaml_files("acme") if "/claude_code/" in str(p))
    assert doc.kind == "document" and doc.filename == f"{CLAUDE_KEY}.yaml"
    assert doc.data == yaml_file.read_bytes()

    # The start of a native id is enough.
    [codex, codex_doc] = await lore_bot.say("/session 0195a3c4", count=2)
    assert f"key: {CODEX_KEY}" in codex.text and codex_doc.filename == f"{CODEX_KEY}.yaml"

    # Another client's session is not there for this chat.
    await lore_bot.say("/client beta")
    before = len(lore_bot.emu.sent(ADMIN))
    [refused] = await lore_bot.say(f"/session {CLAUDE_KEY}")
    assert "no session" in refused.text and "for this client" in refused.text
    await asyncio.sleep(0.3)
    assert len(lore_bot.emu.sent(ADMIN)) == before + 1


# ------------------------------------------------------------------------------------------------ /sessions

async def test_sessions_lists_the_latest_of_the_client_with_open_buttons(lore_bot: LoreBot) -> None:
    await lore_bot.say("/client acme")
    [msg] = await lore_bot.say("/sessions")
    assert "Latest 2 session(s) of client acme" in msg.text
    lines = msg.text.splitlines()
    assert lines[1].startswith("1. ") and CLAUDE_TITLE in msg.text
    assert "2026-03-15 14:02" in lines[2]  # the Codex session ended last: first
    assert "$0.0" in msg.text
    assert [b["callback_data"] for b in msg.buttons] == [f"lore:open:{CODEX_KEY}", f"lore:open:{CLAUDE_KEY}"]
    summary, doc = await lore_bot.press(msg, f"lore:open:{CODEX_KEY}", count=2)
    assert f"key: {CODEX_KEY}" in summary.text and doc.filename == f"{CODEX_KEY}.yaml"

    await lore_bot.say("/client beta")
    [beta] = await lore_bot.say("/sessions")
    assert "Latest 2 session(s) of client beta" in beta.text and "Regex for ISO dates" in beta.text
    assert all(b["callback_data"].startswith("lore:open:chatgpt:") for b in beta.buttons)


# ------------------------------------------------------------------------------------------------ /import

async def test_import_edits_one_message_to_the_final_summary(empty_lore_bot: LoreBot) -> None:
    h = empty_lore_bot
    [msg] = await h.say("/import")
    await h.emu.wait_until(lambda: "LORE import done" in msg.text, timeout=15)
    assert "4 added, 0 updated" in msg.text
    assert "acme: 2 added, 0 updated" in msg.text and "beta: 2 added, 0 updated" in msg.text
    assert "Malformed lines skipped: 0" in msg.text and "Errors: none" in msg.text
    assert msg.edited and len(h.emu.sent(ADMIN)) == 1  # one message, edited in place
    [run] = report.runs_since(h.rt.engine, datetime.now(UTC) - timedelta(minutes=5))
    assert run.trigger == "command" and run.summary["added"] == {"acme": 2, "beta": 2}

    # Again: nothing new, and the digest adds both runs up.
    before = len(h.emu.sent(ADMIN))
    [again] = await h.say("/import")
    await h.emu.wait_until(lambda: "LORE import done" in again.text, timeout=15)
    assert "0 added, 0 updated" in again.text and len(h.emu.sent(ADMIN)) == before + 1
    [digest] = await h.say("/digest")
    assert "LORE" in digest.text and "Imports: 2 run(s)" in digest.text
    assert "Archived: acme 2 new, 0 updated; beta 2 new, 0 updated" in digest.text


async def test_import_progress_edits_are_throttled(empty_lore_bot: LoreBot, monkeypatch: pytest.MonkeyPatch) -> None:
    from services.lore.run import Summary

    def slow_import(settings: Any, progress: Any = None, **kw: Any) -> Summary:
        for i in range(30):
            progress(i, 30, f"/x/source-{i}.jsonl")
            time.sleep(0.04)
        s = Summary(units=30)
        s.bad_lines.append("/x/source-3.jsonl:7: not JSON")
        return s

    monkeypatch.setattr(service, "import_all", slow_import)
    monkeypatch.setattr(lore_handlers, "EDIT_INTERVAL", 0.3)
    h = empty_lore_bot
    [msg] = await h.say("/import")
    await h.emu.wait_until(lambda: "LORE import done" in msg.text, timeout=15)
    progress = [e for e in msg.edits if "source(s)" in (e.text or "")]
    assert progress and "/30 source(s)" in progress[0].text  # progress was shown…
    assert len(msg.edits) <= 1.2 / 0.3 + 2  # …but not for each of the 30 sources
    assert "Malformed lines skipped: 1" in msg.text and "source-3.jsonl:7: not JSON" in msg.text


async def test_a_second_import_while_one_runs_is_refused(empty_lore_bot: LoreBot) -> None:
    assert report._RUNNING.acquire(blocking=False)  # the daily job is importing
    try:
        [msg] = await empty_lore_bot.say("/import")
        await empty_lore_bot.emu.wait_until(lambda: "already running" in msg.text)
    finally:
        report._RUNNING.release()
    assert report.runs_since(empty_lore_bot.rt.engine, datetime.now(UTC) - timedelta(minutes=5)) == []


# ------------------------------------------------------------------------------------------------ /usage

async def test_usage_table_with_totals_for_the_current_client(lore_bot: LoreBot) -> None:
    await lore_bot.say("/client acme")
    [msg] = await lore_bot.say("/usage model 2026-03-01")
    assert "Usage of client acme by model since 2026-03-01 (UTC)" in msg.text
    assert any(e["type"] == "pre" for e in msg.entities)
    for m in ("claude-sonnet-4-5", "claude-haiku-4-5-", "gpt-5-codex", "total"):
        assert m in msg.text, m
    # Claude 439+522+3626+42170 and Codex 3820+905+14080 tokens.
    assert "Total: 65,562 tokens (in 4,259 · out 1,427 · cache write 3,626 · cache read 56,250)" in msg.text
    assert "$0.0" in msg.text

    [by_day] = await lore_bot.say("/usage day 2026-03-01")
    assert "2026-03-14" in by_day.text and "2026-03-15" in by_day.text
    [recent] = await lore_bot.say("/usage")  # the last 7 days: the fixtures are older
    assert "by day since" in recent.text and "No model calls in this period" in recent.text
    [bad] = await lore_bot.say("/usage week")
    assert "'week' is not a start date" in bad.text
    await lore_bot.say("/client beta")
    [beta] = await lore_bot.say("/usage model 2026-03-01")  # ChatGPT exports carry no token counts
    assert "client beta" in beta.text and "No model calls" in beta.text


# ------------------------------------------------------------------------------------------------ digest, daily job

async def test_digest_lore_section_reports_usage_and_adverse_events(lore_bot: LoreBot) -> None:
    rt = lore_bot.rt
    report.run_import(rt, "daily")  # nothing new, but recorded
    d = build_digest(rt, now=datetime(2026, 3, 16, 8, 0, tzinfo=UTC), hours=72)
    [section] = [s for s in d.sections if s.title == "LORE"]
    text = "\n".join(section.lines)
    assert "Imports: 1 run(s)" in text and "Archived: nothing new" in text
    assert "Usage by client:" in text and "  acme: 66k tokens, $0.0" in text
    assert "Adverse events: 1 session(s)" in text and CLAUDE_TITLE in text and "1 SENTINEL block(s)" in text
    quiet = report.section(rt, datetime(2026, 6, 1, tzinfo=UTC) + timedelta(days=365))
    assert quiet is not None and "Adverse events: none" in quiet.lines
    assert "Usage: no model calls in this period" in quiet.lines


async def test_daily_import_job_runs_at_lore_import_time_and_is_recorded(tmp_path: Path) -> None:
    from zoneinfo import ZoneInfo

    async for h in _stack(tmp_path, imported=False):
        h.rt = bootstrap(h.rt.settings.model_copy(update={"tz": "Europe/Berlin", "lore_import_time": dtime(4, 15)}))
        await h.restart()
        assert h.app.job_queue is not None
        [job] = h.app.job_queue.get_jobs_by_name("lore-import")
        assert job.next_t is not None
        local = job.next_t.astimezone(ZoneInfo("Europe/Berlin"))
        assert (local.hour, local.minute) == (4, 15)
        await job.run(h.app)  # what the scheduler does at 04:15
        [run] = report.runs_since(h.rt.engine, datetime.now(UTC) - timedelta(minutes=5))
        assert run.trigger == "daily" and run.summary["added"] == {"acme": 2, "beta": 2}
        [digest] = await h.say("/digest")
        assert "Archived: acme 2 new, 0 updated; beta 2 new, 0 updated" in digest.text


def test_lore_import_time_is_validated(tmp_path: Path) -> None:
    assert load_settings(env_file=None, aistack_home=tmp_path).lore_import_time == dtime(3, 0)
    with pytest.raises(SettingsError, match=r"^LORE_IMPORT_TIME: "):
        load_settings(env_file=None, aistack_home=tmp_path, lore_import_time="25:99")
    env = (Path(__file__).resolve().parents[1] / ".env.example").read_text()
    assert "\nLORE_IMPORT_TIME=03:00\n" in env
