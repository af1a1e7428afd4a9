"""SENTINEL in Telegram: the Allow once / Keep blocked buttons under block alerts, and /audit."""

from __future__ import annotations

import asyncio
import logging
import re

from sqlalchemy import Engine
from telegram import Bot, Update
from telegram.error import BadRequest

from bot.context import Context, reply, runtime
from bot.render import PARSE_MODE, bold, esc, keyboard
from handlers import Command
from services.sentinel import alerts, approvals, report
from services.store import outbox

log = logging.getLogger(__name__)
CALLBACK = re.compile(r"^sx:(allow|keep):(\d+)$")


async def _edit(bot: Bot, chat_id: int, message_id: int, html: str,
                buttons: list[list[tuple[str, str]]] | None) -> None:
    try:
        await bot.edit_message_text(html, chat_id=chat_id, message_id=message_id, parse_mode=PARSE_MODE,
                                    reply_markup=keyboard(buttons))
    except BadRequest as exc:  # the same text again, or the admin deleted the message: nothing to do
        if "not modified" not in str(exc).lower() and "not found" not in str(exc).lower():
            raise


async def decide(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    m = CALLBACK.match(query.data)
    if m is None:
        await query.answer("This button is no longer active.")
        return
    choice, alert_id = m.group(1), int(m.group(2))
    user = update.effective_user
    who = f"@{user.username}" if user and user.username else (user.full_name if user else "admin")
    rt = runtime(context)
    try:
        alert = await asyncio.to_thread(alerts.decide, rt.engine, alert_id, choice, who)
    except alerts.DecisionError as exc:
        await query.answer(str(exc)[:190], show_alert=True)
        return
    _, approvals_dir = report.state_dirs(rt.settings)
    if choice == alerts.ALLOW:
        await asyncio.to_thread(approvals.grant, alert.call_hash, who, ttl=alerts.APPROVAL_TTL.total_seconds(),
                                alert_id=alert.id, directory=approvals_dir)
        await query.answer("Allowed once: the identical call may run within 15 minutes.")
    else:
        await asyncio.to_thread(approvals.deny, alert.call_hash, who, directory=approvals_dir)
        await query.answer("Kept blocked.")
    msg = query.message
    await refresh_alert_messages(context.bot, rt.engine, alert,
                                 pressed=(msg.chat.id, msg.message_id) if msg is not None else None)


async def refresh_alert_messages(bot: Bot, engine: Engine, alert: alerts.Alert,
                                 pressed: tuple[int, int] | None = None) -> None:
    """Edit every delivered copy of the alert's message (and the one just pressed) to its current state.

    `pressed` matters when the button is pressed before the delivery job has recorded its message ids.
    """
    targets = {pressed} if pressed else set()
    item = await asyncio.to_thread(outbox.get, engine, alert.outbox_id) if alert.outbox_id is not None else None
    if item is not None:
        targets |= {(chat_id, ids[-1]) for chat_id, ids in item.sent_refs.items() if ids}
    html = esc(alerts.render(alert))
    for chat_id, message_id in sorted(targets):
        await _edit(bot, chat_id, message_id, html, alerts.buttons(alert))


async def audit(update: Update, context: Context) -> None:
    rt = runtime(context)
    section = await asyncio.to_thread(report.today, rt.settings)
    lines = [f"🛡 {bold(section.title)}", *(esc(line) for line in section.lines)]
    await reply(update, context, "\n".join(lines))


COMMANDS = [Command("audit", "SENTINEL today: tool calls by decision, last blocks", audit, button="🛡 Audit")]
