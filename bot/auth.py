"""The one authorization gate. Every update passes here first (handler group -1), buttons included.

Only chats listed in ADMIN_CHAT_ID get through. Anyone else gets one short refusal that reveals
nothing, the attempt is recorded in events, and the admin hears about each stranger at most hourly.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from telegram import Update
from telegram.ext import ApplicationHandlerStop

from bot.context import Context, runtime
from services.store import events, outbox

log = logging.getLogger(__name__)
REFUSAL = "Sorry, this is a private bot."
NOTICE_WINDOW = timedelta(hours=1)


def is_authorized(update: Update, admin_chats: tuple[int, ...]) -> bool:
    chat = update.effective_chat
    return chat is not None and chat.id in admin_chats


def describe(update: Update) -> tuple[str, str, str | None]:
    """(kind, command, args) of an update, for the events table."""
    if update.callback_query is not None:
        return "callback", "button", update.callback_query.data
    msg = update.effective_message
    text = (msg.text or msg.caption or "") if msg is not None else ""
    if text.startswith("/"):
        head, _, rest = text.partition(" ")
        return "command", head[1:].split("@", 1)[0].lower()[:64], rest or None
    kind = "message" if msg is not None else "other"
    return kind, "", text[:500] or None


async def gate(update: Update, context: Context) -> None:
    rt = runtime(context)
    if is_authorized(update, rt.settings.admin_chat_id):
        return
    kind, command, args = describe(update)
    chat, user = update.effective_chat, update.effective_user
    await asyncio.to_thread(
        events.record_event, rt.engine, kind=kind, command=command, outcome="refused",
        chat_id=chat.id if chat else None, user_id=user.id if user else None,
        username=user.username if user else None, args=args, detail="not an admin chat")
    who = user or chat
    if who is not None:
        name = f"@{user.username}" if user and user.username else (user.full_name if user else "")
        action = f"/{command}" if kind == "command" else ("pressed a button" if kind == "callback" else kind)
        await asyncio.to_thread(
            outbox.enqueue, rt.engine,
            f"🚫 Refused a stranger: {name} (user {user.id if user else '?'}, chat {chat.id if chat else '?'})"
            f" — {action}. Further attempts from them this hour are recorded without notice.",
            source="bot", dedupe_key=f"stranger:{who.id}", dedupe_window=NOTICE_WINDOW)
    try:
        if update.callback_query is not None:
            await update.callback_query.answer(REFUSAL)
        elif chat is not None and update.effective_message is not None:
            await context.bot.send_message(chat.id, REFUSAL)
    except Exception:  # the refusal is a courtesy; failing to send it must not open the gate
        log.warning("could not send refusal to chat %s", chat.id if chat else None, exc_info=True)
    raise ApplicationHandlerStop
