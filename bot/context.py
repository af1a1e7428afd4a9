"""What a handler needs from the running bot: the runtime (settings + database) and a way to reply."""

from __future__ import annotations

from typing import Any

from telegram import Bot, Update
from telegram.ext import ContextTypes

from bot.render import PARSE_MODE, Buttons, keyboard, split_html
from services.runtime import Runtime

Context = ContextTypes.DEFAULT_TYPE
RUNTIME_KEY = "runtime"


def runtime(context: Context) -> Runtime:
    rt: Runtime = context.bot_data[RUNTIME_KEY]
    return rt


async def send_html(bot: Bot, chat_id: int, text: str, buttons: Buttons | None = None) -> list[Any]:
    """Send HTML to a chat, split into ≤4096-char messages; buttons go on the last one."""
    chunks = split_html(text)
    sent = []
    for i, chunk in enumerate(chunks):
        markup = keyboard(buttons) if i == len(chunks) - 1 else None
        sent.append(await bot.send_message(chat_id, chunk, parse_mode=PARSE_MODE, reply_markup=markup))
    return sent


async def reply(update: Update, context: Context, text: str, buttons: Buttons | None = None) -> None:
    chat = update.effective_chat
    if chat is None:
        return
    await send_html(context.bot, chat.id, text, buttons)
