"""The gateway's money in Telegram: /spend (a table and a chart of daily spend) and /budget (show, or set after a
confirmation button: `gb:set:<client>:<usd>:<period>` / `gb:cancel`)."""

from __future__ import annotations

import asyncio
import logging

from telegram import Update
from telegram.error import BadRequest

from bot.context import Context, reply, runtime
from bot.render import PARSE_MODE, Buttons, bold, esc, keyboard
from handlers import Command
from services.gateway import report
from services.gateway.ledger import format_usd

log = logging.getLogger(__name__)

PREFIX = "gb:"
SET, CANCEL = "gb:set:", "gb:cancel"
CALLBACK_LIMIT = 64  # bytes of callback_data Telegram accepts
BUDGET_USAGE = "Usage: /budget — every budget; /budget CLIENT USD [day|month] — set one (asks first)."


def _args(context: Context) -> list[str]:
    return list(context.args or [])


async def _error(update: Update, context: Context, exc: Exception) -> None:
    await reply(update, context, f"⚠️ {esc(exc)}")


# ------------------------------------------------------------------------------------------------ /spend

async def spend(update: Update, context: Context) -> None:
    rt = runtime(context)
    tz = rt.settings.zone
    try:
        client, period = report.parse_spend_args(_args(context))
        s = await asyncio.to_thread(report.spend, rt.engine, tz, client, period)
    except report.ReportError as exc:
        await _error(update, context, exc)
        return
    who = f"client {bold(client)} by model" if client else "by client"
    head = f"💸 Gateway spend {who}, {esc(s.window.label)}, {esc(rt.settings.tz)}"
    if not s.rows:
        await reply(update, context, f"{head}\nNo gateway calls in this period.")
        return
    lines = [head, f"<pre>{esc(report.spend_table(s))}</pre>",
             f"Total {esc(format_usd(s.total.cost_usd))} over {s.total.calls:,} call(s)",
             *(esc(n) for n in report.spend_notes(s))]
    await reply(update, context, "\n".join(lines))
    png = await asyncio.to_thread(report.chart_png, s, tz)
    caption = esc(report.chart_title(s, tz))
    msg = update.effective_message
    if msg is not None:
        await msg.reply_photo(photo=png, filename="spend.png", caption=caption, parse_mode=PARSE_MODE)
    elif update.effective_chat is not None:
        await context.bot.send_photo(update.effective_chat.id, photo=png, filename="spend.png", caption=caption,
                                     parse_mode=PARSE_MODE)


# ------------------------------------------------------------------------------------------------ /budget

def _set_data(req: report.BudgetRequest) -> str:
    return f"{SET}{req.client}:{req.amount}:{req.period}"


def _parse_set(data: str) -> report.BudgetRequest:
    client, usd, period = data.removeprefix(SET).rsplit(":", 2)
    return report.budget_request(client, usd, period)


def _what(req: report.BudgetRequest) -> str:
    return f"{bold(req.client)}: {esc(format_usd(req.usd))} per {esc(req.period)}"


async def budget(update: Update, context: Context) -> None:
    rt = runtime(context)
    args = _args(context)
    if not args:
        statuses = await asyncio.to_thread(report.budget_status, rt.engine, rt.settings.zone)
        if not statuses:
            await reply(update, context, "💰 No budgets yet. /budget CLIENT USD [day|month] sets one.")
            return
        lines = [f"💰 Budgets ({esc(rt.settings.tz)}):", *(f"• {esc(report.budget_line(st))}" for st in statuses)]
        await reply(update, context, "\n".join(lines))
        return
    if len(args) not in (2, 3):
        await reply(update, context, BUDGET_USAGE)
        return
    try:
        req = report.budget_request(args[0], args[1], args[2] if len(args) == 3 else None)
    except report.ReportError as exc:
        await reply(update, context, f"⚠️ {esc(exc)}\n{esc(BUDGET_USAGE)}")
        return
    data = _set_data(req)
    if len(data.encode()) > CALLBACK_LIMIT:
        await _error(update, context, ValueError(
            f"client name {req.client!r} is too long for a button; use `aistack budget set {req.client} "
            f"{req.amount} --period {req.period}`"))
        return
    old = await asyncio.to_thread(report.current_budget, rt.engine, req)
    now = f"\nNow: {esc(format_usd(old.usd))} per {esc(old.period)}." if old else "\nThere is no such budget yet."
    buttons: Buttons = [[("✅ Set", data), ("✖️ Cancel", CANCEL)]]
    await reply(update, context, f"💰 Set the budget of {_what(req)}?{now}\n"
                                 "Calls that could take it over the limit will be refused.", buttons)


async def _edit(update: Update, context: Context, html: str) -> None:
    query = update.callback_query
    assert query is not None
    if query.message is None:
        await reply(update, context, html)
        return
    try:
        await context.bot.edit_message_text(html, chat_id=query.message.chat.id, message_id=query.message.message_id,
                                            parse_mode=PARSE_MODE, reply_markup=keyboard(None))
    except BadRequest as exc:  # pressed twice, or the message is gone: nothing more to show
        if "not modified" not in str(exc).lower() and "not found" not in str(exc).lower():
            raise


async def on_button(update: Update, context: Context) -> None:
    """`gb:set:<client>:<usd>:<period>` sets the budget it names; `gb:cancel` drops the request."""
    query = update.callback_query
    assert query is not None and query.data is not None
    if query.data == CANCEL:
        await query.answer("Cancelled")
        await _edit(update, context, "💰 Budget change cancelled.")
        return
    if not query.data.startswith(SET):
        await query.answer("This button is no longer active.")
        return
    rt = runtime(context)
    try:
        req = _parse_set(query.data)
        b = await asyncio.to_thread(report.set_budget, rt.engine, req)
    except (ValueError, report.ReportError) as exc:
        await query.answer(str(exc)[:190], show_alert=True)
        return
    await query.answer("Budget set")
    await _edit(update, context, f"✅ Budget set: {bold(b.client)} {esc(format_usd(b.usd))} per {esc(b.period)}.")


COMMANDS = [
    Command("spend", "Gateway: spend by client or model (/spend [client] [today|7d|30d|month|YYYY-MM])", spend,
            button="💸 Spend"),
    Command("budget", "Gateway: budgets (/budget CLIENT USD [day|month] sets one)", budget),
]
