"""The terminal chat: typed lines reach the bot, replies and buttons print, numbers press buttons."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import ApplicationBuilder, CallbackQueryHandler, CommandHandler, ContextTypes

from bot.console import INTRO, format_message, run_console
from bot.emulator import BotApiEmulator, SentMessage

TOKEN = "123456:TEST-token-not-real"
CHAT = 777


@asynccontextmanager
async def emulator_with_bot(pressed: list[str]) -> AsyncIterator[BotApiEmulator]:
    """An emulator plus a tiny bot: /ping answers with a keyboard, a press edits the message."""

    async def ping(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        buttons = [[InlineKeyboardButton("Allow once", callback_data="allow"),
                    InlineKeyboardButton("Keep blocked", callback_data="block")],
                   [InlineKeyboardButton("Docs", url="https://example.com/docs")]]
        await update.message.reply_html("<b>pong</b> &amp; a question",
                                        reply_markup=InlineKeyboardMarkup(buttons))

    async def on_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None and query.data is not None
        pressed.append(query.data)
        await query.answer("Allowed")
        await query.edit_message_text(f"Decision: <i>{query.data}</i>", parse_mode="HTML")

    emu = BotApiEmulator(TOKEN)
    await emu.start()
    app = ApplicationBuilder().token(TOKEN).base_url(emu.base_url).build()
    app.add_handler(CommandHandler("ping", ping))
    app.add_handler(CallbackQueryHandler(on_press))
    try:
        async with app:
            await app.start()
            assert app.updater is not None
            await app.updater.start_polling(poll_interval=0, timeout=1)
            try:
                yield emu
            finally:
                await app.updater.stop()
                await app.stop()
    finally:
        await emu.stop()


async def chat(emu: BotApiEmulator, script: str) -> str:
    stdout = io.StringIO()
    await run_console(emu, CHAT, stdin=io.StringIO(script), stdout=stdout, reply_wait=3.0, settle=0.1)
    return stdout.getvalue()


async def test_console_chat_shows_replies_buttons_and_presses_them() -> None:
    pressed: list[str] = []
    async with emulator_with_bot(pressed) as emu:
        transcript = await chat(emu, "/ping\n1\n/quit\nnever sent\n")
    assert transcript.startswith(INTRO)
    assert ("you> /ping\nbot: pong & a question\n"
            "     [1] Allow once   [2] Keep blocked\n"
            "     [3] Docs\n") in transcript
    assert "(pressed [1] Allow once)" in transcript
    assert "bot (notice): Allowed" in transcript
    assert "bot (edited): Decision: allow" in transcript
    assert pressed == ["allow"]
    [message] = emu.sent(CHAT)
    assert (message.text, message.raw_text) == ("Decision: allow", "Decision: <i>allow</i>")
    assert "never sent" not in transcript


async def test_console_explains_numbers_that_are_not_buttons() -> None:
    pressed: list[str] = []
    async with emulator_with_bot(pressed) as emu:
        transcript = await chat(emu, "2\n/ping\n9\n3\n")  # ends at EOF, no /quit
    assert "(no bot message has buttons to press right now, so 2 does nothing)" in transcript
    assert "there is no [9]" in transcript
    assert "[3] Docs is not a callback button: it opens https://example.com/docs" in transcript
    assert pressed == []


def test_documents_are_shown_with_name_and_size() -> None:
    doc = SentMessage(chat_id=CHAT, message_id=5, kind="document", filename="report.txt", data=b"12345",
                      caption="nightly", raw_text="<b>nightly</b>",
                      entities=[{"type": "bold", "offset": 0, "length": 7}])
    assert format_message(doc) == "bot: 📎 report.txt (5 bytes)\n     nightly"
    assert format_message(doc, color=True).endswith("\x1b[1mnightly\x1b[22m")
