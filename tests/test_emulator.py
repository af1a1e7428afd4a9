"""The Bot API emulator, driven by the real python-telegram-bot HTTP stack."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
import telegram
from telegram import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest, Conflict, InvalidToken, NetworkError, RetryAfter
from telegram.ext import ApplicationBuilder, BaseHandler, CommandHandler, ContextTypes

from bot.emulator import BotApiEmulator, EmulatorThread, EntityParseError, parse_html

TOKEN = "123456:TEST-token-not-real"
CHAT = 4242


@pytest.fixture
async def emu() -> AsyncIterator[BotApiEmulator]:
    emulator = BotApiEmulator(TOKEN)
    await emulator.start()
    emulator.add_chat(CHAT)
    try:
        yield emulator
    finally:
        await emulator.stop()


@pytest.fixture
async def bot(emu: BotApiEmulator) -> AsyncIterator[telegram.Bot]:
    async with telegram.Bot(TOKEN, base_url=emu.base_url, base_file_url=emu.base_file_url) as the_bot:
        yield the_bot


def keyboard(*data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(f"button {d}", callback_data=d) for d in data]])


async def bad_request(coro: object) -> str:
    """The BadRequest message, lowercased: PTB strips "Bad Request: " and capitalize()s the rest."""
    with pytest.raises(BadRequest) as info:
        await coro  # type: ignore[misc]
    return info.value.message.lower()


# ------------------------------------------------------------------------------------------ basics


async def test_get_me_describes_the_bot(bot: telegram.Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.username, me.is_bot) == (123456, "aistack_demo_bot", True)


async def test_wrong_token_is_rejected(emu: BotApiEmulator) -> None:
    with pytest.raises(InvalidToken):
        async with telegram.Bot("123456:wrong-token", base_url=emu.base_url):
            pass


async def test_raw_http_unknown_method_json_body_and_query_string(emu: BotApiEmulator) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{emu.base_url}{TOKEN}/noSuchMethod") as resp:
            assert resp.status == 404
            assert await resp.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
        api = f"{emu.base_url}{TOKEN}"
        async with http.post(f"{api}/sendMessage", json={"chat_id": CHAT, "text": "json"}) as resp:
            assert (await resp.json())["result"]["text"] == "json"
        async with http.get(f"{api}/sendmessage", params={"chat_id": CHAT, "text": "q"}) as resp:
            assert resp.status == 200  # method names are case-insensitive, as on Telegram
    assert [m.text for m in emu.sent(CHAT)] == ["json", "q"]


# ----------------------------------------------------------------------------------------- sending


async def test_send_message_html_is_parsed_and_recorded(bot: telegram.Bot, emu: BotApiEmulator) -> None:
    html = '<b>Deploy</b> &lt;prod&gt; <a href="https://example.com">log</a> 🚀 <code>ok</code>'
    msg = await bot.send_message(CHAT, html, parse_mode="HTML", reply_markup=keyboard("a", "b"))
    assert msg.text == "Deploy <prod> log 🚀 ok"
    assert [(e.type, e.offset, e.length) for e in msg.entities] == [
        ("bold", 0, 6), ("text_link", 14, 3), ("code", 21, 2)]  # 🚀 counts 2 UTF-16 units
    assert msg.reply_markup == keyboard("a", "b")
    [sent] = emu.sent(CHAT)
    assert (sent.text, sent.raw_text, sent.parse_mode, sent.kind) == (msg.text, html, "HTML", "text")
    assert sent.entities == [e.to_dict() for e in msg.entities]
    assert [b["callback_data"] for b in sent.buttons] == ["a", "b"]


@pytest.mark.parametrize(("text", "expected"), [
    ("", "message text is empty"),
    ("<b></b>  ", "message must be non-empty"),
    ("x" * 4097, "message is too long"),
    ("<b>" + "y" * 4097 + "</b>", "message is too long"),
    ("<foo>hi</foo>", 'can\'t parse entities: unsupported start tag "foo" at byte offset 0'),
    ("é <blink>", 'can\'t parse entities: unsupported start tag "blink" at byte offset 3'),
    ("<b>bold", 'can\'t parse entities: can\'t find end tag corresponding to start tag "b"'),
    ("<b><i>x</b></i>", 'unmatched end tag at byte offset 7, expected "</i>", found "</b>"'),
    ("1 < 2", 'can\'t parse entities: unsupported start tag "" at byte offset 2'),
    ("x <b", "can't parse entities: unclosed start tag at byte offset 2"),
    ("Q&A", 'can\'t parse entities: unescaped "&" at byte offset 1'),
    ("<span>s</span>", 'tag "span" must have class "tg-spoiler"'),
])
async def test_send_message_rejects_what_telegram_rejects(bot: telegram.Bot, text: str,
                                                          expected: str) -> None:
    assert expected in await bad_request(bot.send_message(CHAT, text, parse_mode="HTML"))


async def test_length_limit_counts_text_after_parsing(bot: telegram.Bot) -> None:
    msg = await bot.send_message(CHAT, "<b>" + "&amp;" * 4096 + "</b>", parse_mode="HTML")
    assert msg.text == "&" * 4096


async def test_unknown_chat_and_callback_data_limits(bot: telegram.Bot) -> None:
    assert await bad_request(bot.send_message(999, "hi")) == "chat not found"
    for data in ("x" * 65, "", "é" * 33):  # the limit is 64 *bytes*
        refused = bot.send_message(CHAT, "hi", reply_markup=keyboard(data))
        assert await bad_request(refused) == "button_data_invalid"
    await bot.send_message(CHAT, "hi", reply_markup=keyboard("x" * 64))


async def test_edits_follow_telegram_rules(bot: telegram.Bot, emu: BotApiEmulator) -> None:
    msg = await bot.send_message(CHAT, "<b>v1</b>", parse_mode="HTML", reply_markup=keyboard("a"))
    same = bot.edit_message_text("<b>v1</b>", CHAT, msg.message_id, parse_mode="HTML",
                                 reply_markup=keyboard("a"))
    assert (await bad_request(same)).startswith("message is not modified")
    assert await bad_request(bot.edit_message_text("x", CHAT, 999)) == "message to edit not found"
    # Without reply_markup, editMessageText drops the keyboard - a classic surprise on real Telegram.
    edited = await bot.edit_message_text("v2", CHAT, msg.message_id)
    assert isinstance(edited, Message)
    assert edited.text == "v2" and edited.reply_markup is None and edited.edit_date is not None
    await bot.edit_message_reply_markup(CHAT, msg.message_id, reply_markup=keyboard("b"))
    [sent] = emu.sent(CHAT)
    assert (sent.text, [e.text for e in sent.edits]) == ("v2", ["v2", "v2"])
    assert sent.buttons[0]["callback_data"] == "b"
    assert await bot.delete_message(CHAT, msg.message_id)
    assert sent.deleted
    assert await bad_request(bot.delete_message(CHAT, msg.message_id)) == "message to delete not found"


async def test_set_my_commands_is_stored_and_validated(bot: telegram.Bot, emu: BotApiEmulator) -> None:
    await bot.set_my_commands([BotCommand("help", "What I can do"), BotCommand("status", "Stack status")])
    assert emu.commands == [{"command": "help", "description": "What I can do"},
                            {"command": "status", "description": "Stack status"}]
    assert [c.command for c in await bot.get_my_commands()] == ["help", "status"]
    assert await bad_request(bot.set_my_commands([BotCommand("Help", "x")])) == "bot_command_invalid"
    no_description = [BotCommand("help", "")]
    assert await bad_request(bot.set_my_commands(no_description)) == "bot_command_description_invalid"
    too_many = [BotCommand(f"c{i}", "d") for i in range(101)]
    assert await bad_request(bot.set_my_commands(too_many)) == "bot_commands_too_much"


async def test_send_document_multipart_is_stored(bot: telegram.Bot, emu: BotApiEmulator) -> None:
    msg = await bot.send_document(CHAT, b"line 1\nline 2\n", filename="report.txt", caption="<i>nightly</i>",
                                  parse_mode="HTML")
    assert msg.document is not None
    assert (msg.document.file_name, msg.document.file_size, msg.caption) == ("report.txt", 14, "nightly")
    [sent] = emu.sent(CHAT)
    assert (sent.kind, sent.filename, sent.data) == ("document", "report.txt", b"line 1\nline 2\n")
    assert (sent.caption, sent.raw_text, sent.text) == ("nightly", "<i>nightly</i>", "")
    file = await bot.get_file(msg.document.file_id)
    assert bytes(await file.download_as_bytearray()) == b"line 1\nline 2\n"
    photo = await bot.send_photo(CHAT, b"\x89PNG fake", filename="chart.png")
    assert photo.photo and emu.sent(CHAT)[-1].kind == "photo"


async def test_chat_action_is_recorded(bot: telegram.Bot, emu: BotApiEmulator) -> None:
    await bot.send_chat_action(CHAT, "typing")
    assert [(a.chat_id, a.action) for a in emu.chat_actions] == [(CHAT, "typing")]


# ----------------------------------------------------------------------------------------- updates


async def test_long_poll_returns_as_soon_as_a_message_is_injected(bot: telegram.Bot,
                                                                   emu: BotApiEmulator) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.05)
    injected_at = time.perf_counter()
    update_id = emu.inject_message(CHAT, "/status@aistack_demo_bot now")
    [update] = await poll
    assert time.perf_counter() - injected_at < 0.5
    assert update.message is not None and update.effective_user is not None
    assert update.update_id == update_id and update.message.text == "/status@aistack_demo_bot now"
    assert [(e.type, e.offset, e.length) for e in update.message.entities] == [("bot_command", 0, 24)]
    assert update.effective_user.id == CHAT


async def test_offset_confirms_updates(bot: telegram.Bot, emu: BotApiEmulator) -> None:
    first = emu.inject_message(CHAT, "one")
    second = emu.inject_message(CHAT, "two")
    assert [u.update_id for u in await bot.get_updates()] == [first, second]
    assert [u.update_id for u in await bot.get_updates(limit=1)] == [first]  # unconfirmed: delivered again
    assert [u.update_id for u in await bot.get_updates(offset=second)] == [second]
    assert await bot.get_updates(offset=second + 1) == ()
    assert emu.pending_updates() == 0


async def test_a_newer_poll_terminates_the_older_one(bot: telegram.Bot, emu: BotApiEmulator) -> None:
    older = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.05)
    async with telegram.Bot(TOKEN, base_url=emu.base_url) as second_instance:
        assert await second_instance.get_updates(timeout=0) == ()
    with pytest.raises(Conflict):
        await older


async def test_button_press_arrives_as_callback_query(bot: telegram.Bot, emu: BotApiEmulator) -> None:
    msg = await bot.send_message(CHAT, "Run <code>rm</code>?", parse_mode="HTML",
                                 reply_markup=keyboard("allow"))
    with pytest.raises(ValueError, match="no button"):
        emu.press_button(CHAT, msg.message_id, "nope")
    query_id = emu.press_button(CHAT, msg.message_id, "allow")
    [update] = await bot.get_updates()
    query = update.callback_query
    assert query is not None and isinstance(query.message, Message)
    assert (query.id, query.data, query.message.message_id, query.message.text) == (
        query_id, "allow", msg.message_id, "Run rm?")
    await query.answer("Allowed once")
    [answer] = emu.callback_answers
    assert (answer.text, answer.data, answer.message_id) == ("Allowed once", "allow", msg.message_id)
    assert (answer.get("text"), answer["show_alert"], answer.get("nope", 1)) == ("Allowed once", False, 1)
    assert "query id is invalid" in await bad_request(bot.answer_callback_query(query_id))


async def test_fail_next_mimics_flood_control_and_server_errors(bot: telegram.Bot,
                                                                emu: BotApiEmulator) -> None:
    emu.fail_next("sendMessage", retry_after=7)
    with pytest.raises(RetryAfter) as flood:
        await bot.send_message(CHAT, "x")
    assert "retry in 7 seconds" in str(flood.value).lower()  # retry_after is int or timedelta by PTB setting
    emu.fail_next("sendMessage", times=2, error_code=502, description="Bad Gateway")
    for _ in range(2):
        with pytest.raises(NetworkError, match="Bad Gateway"):
            await bot.send_message(CHAT, "x")
    await bot.send_message(CHAT, "finally")
    assert [m.text for m in emu.sent(CHAT)] == ["finally"]
    assert emu.calls["sendMessage"] == 4


# ------------------------------------------------------------------------------------- application


@asynccontextmanager
async def running_app(emu: BotApiEmulator, *handlers: BaseHandler[Any, Any, Any]) -> AsyncIterator[Any]:
    app = ApplicationBuilder().token(TOKEN).base_url(emu.base_url).base_file_url(emu.base_file_url).build()
    for handler in handlers:
        app.add_handler(handler)
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=1, allowed_updates=Update.ALL_TYPES)
        try:
            yield app
        finally:
            await app.updater.stop()
            await app.stop()


async def test_application_polls_handles_and_replies(emu: BotApiEmulator) -> None:
    async def ping(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        await update.message.reply_text("pong")

    async with running_app(emu, CommandHandler("ping", ping)):
        emu.inject_message(CHAT, "/ping")
        [reply] = await emu.wait_for_sent(1, CHAT, timeout=5)
        emu.inject_message(CHAT, "/ping@aistack_demo_bot")
        await emu.wait_for_sent(2, CHAT, timeout=5)
    assert reply.text == "pong"
    assert emu.calls["getMe"] == 1 and emu.calls["deleteWebhook"] == 1


# ---------------------------------------------------------------------------------- thread runner


def test_emulator_thread_serves_synchronous_callers() -> None:
    with EmulatorThread(TOKEN) as emu:
        emu.inject_message(CHAT, "hello")

        async def echo_once() -> None:
            async with telegram.Bot(TOKEN, base_url=emu.base_url) as bot:
                [update] = await bot.get_updates(timeout=2)
                assert update.message is not None
                await bot.send_message(update.message.chat_id, update.message.text.upper())  # type: ignore[union-attr]

        asyncio.run(echo_once())
        [sent] = emu.wait_for_sent(1, CHAT, timeout=5)
        assert sent.text == "HELLO"
        assert emu.calls["sendMessage"] == 1


# ------------------------------------------------------------------------------------- html parser


@pytest.mark.parametrize(("html", "error"), [  # cases from tdlib's own test suite
    ("🏟 🏟&lt;<abacaba", "Unclosed start tag at byte offset 13"),
    ("🏟 🏟&lt;<i   =aba>", 'Empty attribute name in the tag "i" at byte offset 13'),
    ("🏟 🏟&lt;<i    aba  =  190azAz-.,", "Unexpected end of name token at byte offset 27"),
    ("🏟 🏟&lt;<b></b></", "Unexpected end tag at byte offset 20"),
    ("🏟 🏟&lt;<i>a</i   ", "Unclosed end tag at byte offset 17"),
])
def test_html_errors_match_tdlib(html: str, error: str) -> None:
    with pytest.raises(EntityParseError) as info:
        parse_html(html)
    assert str(info.value) == error


def test_html_entities_match_tdlib() -> None:
    parsed = parse_html("🏟 🏟<i>🏟 &gt;<b aba   =   caba>&lt🏟</b></i>"
                        '<pre><code class="language-py">x</code></pre>'
                        "<blockquote expandable>q</blockquote>")
    assert parsed.text == "🏟 🏟🏟 ><🏟xq"
    assert parsed.entities == [
        {"type": "italic", "offset": 5, "length": 7}, {"type": "bold", "offset": 9, "length": 3},
        {"type": "pre", "offset": 12, "length": 1, "language": "py"},
        {"type": "expandable_blockquote", "offset": 13, "length": 1},
    ]
    assert parse_html("a &amp; b &#x41; &unknown;", strict_ampersand=False).text == "a & b A &unknown;"
