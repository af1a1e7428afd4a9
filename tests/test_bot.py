"""The bot end to end: python-telegram-bot's real HTTP stack against the local Bot API emulator."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import select

import handlers
from bot.app import ERROR_REPLY
from bot.auth import REFUSAL
from bot.context import reply
from bot.render import keyboard
from handlers import Command
from services.store import outbox
from services.store.models import Event
from tests.bot_fixtures import ADMIN, STRANGER, BotHarness

ROOT = Path(__file__).resolve().parents[1]


def _events(h: BotHarness) -> list[Any]:
    with h.rt.engine.connect() as conn:
        return list(conn.execute(select(Event).order_by(Event.id)))


async def _until(pred, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not pred():
        if loop.time() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def test_admin_start_gets_reply_and_commands_are_published(bot_stack: BotHarness) -> None:
    [msg] = await bot_stack.say("/start")
    assert "Hello" in msg.text
    labels = [b["text"] for row in msg.reply_markup["inline_keyboard"] for b in row]
    assert "❓ Help" in labels
    published = [c["command"] for c in bot_stack.emu.commands]
    assert published == [c.name for c in handlers.commands()]
    await _until(lambda: any(e.command == "start" for e in _events(bot_stack)))
    [ev] = [e for e in _events(bot_stack) if e.command == "start"]
    assert (ev.outcome, ev.chat_id, ev.kind) == ("ok", ADMIN, "command")


async def test_help_lists_every_command(bot_stack: BotHarness) -> None:
    [msg] = await bot_stack.say("/help")
    for c in handlers.commands():
        assert f"/{c.name} — " in msg.text


async def test_stranger_is_refused_recorded_and_admin_told_once_per_hour(bot_stack: BotHarness) -> None:
    [msg] = await bot_stack.say("/help", chat_id=STRANGER)
    assert msg.text == REFUSAL
    await bot_stack.say("/digest secret", chat_id=STRANGER)
    refused = [e for e in _events(bot_stack) if e.outcome == "refused"]
    assert [(e.command, e.user_id) for e in refused] == [("help", STRANGER), ("digest", STRANGER)]
    notices = await bot_stack.emu.wait_for_sent(1, chat_id=ADMIN)
    assert "Refused a stranger" in notices[0].text and str(STRANGER) in notices[0].text
    await asyncio.sleep(1.0)  # several delivery rounds: the second attempt must not notify again
    assert len(bot_stack.emu.sent(ADMIN)) == 1
    assert outbox.pending_count(bot_stack.rt.engine) == 0


async def test_stranger_button_press_is_refused(bot_stack: BotHarness) -> None:
    # A keyboard left in a chat that is no longer an admin chat (say, a removed former admin).
    bot_stack.emu.add_chat(STRANGER)
    old = await bot_stack.app.bot.send_message(STRANGER, "old menu",
                                               reply_markup=keyboard([[("📋 Digest", "cmd:digest")]]))
    before = len(bot_stack.emu.sent(STRANGER))
    bot_stack.emu.press_button(STRANGER, old.message_id, "cmd:digest", user_id=STRANGER)
    await _until(lambda: len(bot_stack.emu.callback_answers) >= 1)
    assert bot_stack.emu.callback_answers[-1].get("text") == REFUSAL
    assert len(bot_stack.emu.sent(STRANGER)) == before  # no digest leaked
    await _until(lambda: any(e.kind == "callback" and e.outcome == "refused" for e in _events(bot_stack)))


async def test_admin_button_runs_the_command(bot_stack: BotHarness) -> None:
    [menu] = await bot_stack.say("/start")
    before = len(bot_stack.emu.sent(ADMIN))
    bot_stack.emu.press_button(ADMIN, menu.message_id, "cmd:digest")
    sent = await bot_stack.emu.wait_for_sent(before + 1, chat_id=ADMIN)
    assert "Daily digest" in sent[-1].text


async def test_handler_error_is_reported_and_bot_keeps_serving(bot_stack: BotHarness, monkeypatch,  # type: ignore[no-untyped-def]
                                                                caplog) -> None:
    async def boom(update, context):  # type: ignore[no-untyped-def]
        raise RuntimeError("kaboom")

    original = handlers.commands
    monkeypatch.setattr(handlers, "commands", lambda: [*original(), Command("boom", "Raise", boom)])
    await bot_stack.restart()
    [msg] = await bot_stack.say("/boom")
    assert msg.text == ERROR_REPLY
    [after] = await bot_stack.say("/help")
    assert "/digest" in after.text
    await _until(lambda: any(e.command == "boom" for e in _events(bot_stack)))
    boom_ev = next(e for e in _events(bot_stack) if e.command == "boom")
    assert boom_ev.outcome == "error" and "kaboom" in (boom_ev.detail or "")
    assert "Traceback" in caplog.text and "RuntimeError: kaboom" in caplog.text


async def test_long_reply_is_split_into_valid_messages(bot_stack: BotHarness, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    lines = [f"<b>row {i}</b> " + " ".join(["x&amp;y"] * 8) for i in range(220)]
    text = "\n".join(lines)
    assert len(text) > 10_000

    async def long(update, context):  # type: ignore[no-untyped-def]
        await reply(update, context, text)

    original = handlers.commands
    monkeypatch.setattr(handlers, "commands", lambda: [*original(), Command("long", "Long", long)])
    await bot_stack.restart()
    await bot_stack.say("/long", count=3)
    await asyncio.sleep(0.3)  # let any further chunk arrive
    parts = bot_stack.emu.sent(ADMIN)
    assert len(parts) >= 3
    assert all(len(p.text) <= 4096 for p in parts)
    assert "\n".join(p.text for p in parts) == text.replace("<b>", "").replace("</b>", "").replace("&amp;", "&")


async def test_outbox_row_from_another_process_is_delivered_once(bot_stack: BotHarness) -> None:
    env = {**os.environ, "AISTACK_HOME": str(bot_stack.rt.settings.aistack_home), "DATABASE_URL": "",
           "TELEGRAM_BOT_TOKEN": "", "ADMIN_CHAT_ID": str(ADMIN)}
    out = subprocess.run([sys.executable, "-m", "bot.cli", "notify", "disk <90%> & rising"], env=env,
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    [msg] = await bot_stack.emu.wait_for_sent(1, chat_id=ADMIN)
    assert msg.text == "disk <90%> & rising"
    await asyncio.sleep(1.0)
    assert len(bot_stack.emu.sent(ADMIN)) == 1


async def test_failed_delivery_waits_and_is_delivered_after_restart(bot_stack: BotHarness) -> None:
    bot_stack.emu.fail_next("sendMessage", times=1, error_code=502, description="Bad Gateway")
    item = outbox.enqueue(bot_stack.rt.engine, "build finished", source="test")
    assert item is not None
    await _until(lambda: (outbox.get(bot_stack.rt.engine, item) or _NO).attempts >= 1)
    await bot_stack.stop()
    assert outbox.get(bot_stack.rt.engine, item).status == "pending"  # type: ignore[union-attr]
    assert bot_stack.emu.sent(ADMIN) == []
    await bot_stack.start()  # a new bot process picks the row up after its back-off
    [msg] = await bot_stack.emu.wait_for_sent(1, chat_id=ADMIN, timeout=15)
    assert msg.text == "build finished"
    await _until(lambda: outbox.get(bot_stack.rt.engine, item).status == "delivered")  # type: ignore[union-attr]
    await asyncio.sleep(0.5)
    assert len(bot_stack.emu.sent(ADMIN)) == 1


class _No:
    attempts = 0
    status = "missing"


_NO = _No()


async def test_digest_command_returns_the_digest(bot_stack: BotHarness) -> None:
    await bot_stack.say("/help")
    await bot_stack.say("/help", chat_id=STRANGER)
    msgs = await bot_stack.say("/digest")
    text = msgs[0].text
    assert "Daily digest" in text and "Bot activity" in text
    assert "Commands served: 1" in text  # the /help before; /digest itself is recorded after it replies
    assert "Refused attempts: 1" in text


async def test_unknown_command_gets_a_pointer_to_help(bot_stack: BotHarness) -> None:
    [msg] = await bot_stack.say("/nosuch")
    assert "Unknown command /nosuch" in msg.text



async def test_daily_digest_is_scheduled_at_digest_time_and_delivered(bot_stack: BotHarness) -> None:
    from datetime import datetime, time
    from zoneinfo import ZoneInfo

    from services.runtime import bootstrap
    from tests.bot_fixtures import make_settings

    # Berlin 07:30 while the machine runs in UTC: the job must follow TZ, not the host clock.
    bot_stack.rt = bootstrap(make_settings(bot_stack.rt.settings.aistack_home, bot_stack.emu,
                                           tz="Europe/Berlin", digest_time=time(7, 30)))
    await bot_stack.restart()
    assert bot_stack.app.job_queue is not None
    [job] = bot_stack.app.job_queue.get_jobs_by_name("digest")
    assert job.next_t is not None
    local = job.next_t.astimezone(ZoneInfo("Europe/Berlin"))
    assert (local.hour, local.minute) == (7, 30)
    assert job.next_t > datetime.now(ZoneInfo("UTC"))
    await job.run(bot_stack.app)  # what the scheduler does at 07:30
    [msg] = await bot_stack.emu.wait_for_sent(1, chat_id=ADMIN)
    assert "Daily digest" in msg.text and "Bot activity" in msg.text
    assert re.search(r"\d\d:\d\d CES?T", msg.text)  # shown in the user's zone
