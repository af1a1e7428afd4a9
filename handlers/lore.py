"""LORE in Telegram: the chat's client (/client), /search, /session, /sessions, /import and /usage.

Every read is limited to the chat's current client (services/lore/report.py passes only that client on), and a
session opened from a button is checked against it again, so an old button cannot open another client's session.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any
from zoneinfo import ZoneInfo

from telegram import Bot, Update
from telegram.error import BadRequest

from bot.context import Context, reply, runtime
from bot.render import PARSE_MODE, Buttons, bold, code, esc, keyboard
from handlers import Command
from services.lore import report
from services.lore import usage as usage_mod

log = logging.getLogger(__name__)

PREFIX = "lore:"
OPEN, CLIENT = "lore:open:", "lore:client:"
CALLBACK_LIMIT = 64  # bytes of callback_data Telegram accepts
EDIT_INTERVAL = 2.0  # seconds between progress edits of the /import message
SEARCH_LIMIT = 5
SESSIONS_LIMIT = 10
_MARKED = re.compile(r"«([^«»]*)»")


def _args(context: Context) -> list[str]:
    return list(context.args or [])


def _chat_id(update: Update) -> int:
    assert update.effective_chat is not None  # the gate lets only chats through
    return update.effective_chat.id


def _callback(prefix: str, value: str) -> str:
    """Callback data within Telegram's 64 bytes: a longer value is cut, and resolved later as a unique prefix."""
    room = CALLBACK_LIMIT - len(prefix.encode())
    return prefix + value.encode()[:room].decode(errors="ignore")


async def _client(update: Update, context: Context) -> str:
    return await asyncio.to_thread(report.current_client, runtime(context), _chat_id(update))


async def _error(update: Update, context: Context, exc: Exception) -> None:
    await reply(update, context, f"⚠️ {esc(exc)}")


def _snippet_html(snippet: str) -> str:
    """The search snippet escaped, with its «matched» words in bold."""
    return _MARKED.sub(lambda m: f"<b>{m.group(1)}</b>", esc(snippet))


# ------------------------------------------------------------------------------------------------ /client

def _client_view(current: str, known: list[str]) -> tuple[str, Buttons]:
    text = (f"📚 Current client: {bold(current)}\n"
            f"Known clients: {esc(', '.join(known))}\n"
            "/search, /session, /sessions and /usage see only the current client. Tap one to switch.")
    labels = [(("✅ " if n == current else "") + n, _callback(CLIENT, n)) for n in known]
    return text, [labels[i:i + 3] for i in range(0, len(labels), 3)]


async def client(update: Update, context: Context) -> None:
    rt = runtime(context)
    args = _args(context)
    try:
        if args:
            name = await asyncio.to_thread(report.set_client, rt, _chat_id(update), args[0])
            await reply(update, context, f"📚 This chat now works in client {bold(name)}.")
            return
        current = await _client(update, context)
        known = await asyncio.to_thread(report.known_clients, rt.settings)
    except report.ERRORS as exc:
        await _error(update, context, exc)
        return
    text, buttons = _client_view(current, known)
    await reply(update, context, text, buttons)


# ------------------------------------------------------------------------------------------------ /search

async def search(update: Update, context: Context) -> None:
    query = " ".join(_args(context)).strip()
    if not query:
        await reply(update, context, "Usage: /search WORDS — words, \"a phrase\", or identifiers and paths.")
        return
    rt = runtime(context)
    try:
        who = await _client(update, context)
        hits = await asyncio.to_thread(report.search, rt.settings, who, query, SEARCH_LIMIT)
    except report.ERRORS as exc:
        await _error(update, context, exc)
        return
    if not hits:
        await reply(update, context, f"🔎 No matches for {bold(query)} in client {bold(who)}.")
        return
    lines = [f"🔎 {len(hits)} session(s) for {bold(query)} in client {bold(who)}:"]
    buttons = []
    for i, h in enumerate(hits, 1):
        lines += ["", f"{i}. {bold(h.title or '(untitled)')} — {esc(report.local_time(h.started, rt.settings.zone))}",
                  code(h.key)]
        if h.snippet:
            lines.append(_snippet_html(h.snippet))
        buttons.append([(f"📄 {i}. {(h.title or h.key)[:40]}", _callback(OPEN, h.key))])
    await reply(update, context, "\n".join(lines), buttons)


# ------------------------------------------------------------------------------------------------ /session

def _session_html(opened: report.Opened, tz: ZoneInfo) -> str:
    doc = opened.found.doc
    u = doc.get("usage") or {}
    k = doc.get("knowledge") or {}
    started, ended = report.local_time(doc.get("started"), tz), report.local_time(doc.get("ended"), tz)
    if started[:10] == ended[:10]:
        ended = ended[11:]
    token_line = ("unknown" if all(v is None for v in u.values()) else
                  f"in {report.tokens(u.get('input_tokens'))} · out {report.tokens(u.get('output_tokens'))} · "
                  f"cache write {report.tokens(u.get('cache_creation_input_tokens'))} · "
                  f"cache read {report.tokens(u.get('cache_read_input_tokens'))}")
    cost = report.money(doc.get("cost_usd"))
    if doc.get("cost_usd") is None and doc.get("unpriced_models"):
        cost += f" (no price for {', '.join(doc['unpriced_models'])})"
    adverse = len((doc.get("security") or {}).get("adverse_events") or [])
    lines = [f"🗂 {bold(doc.get('title') or '(untitled)')}",
             f"key: {code(opened.found.key)}",
             f"client: {esc(opened.found.client)} · platform: {esc(doc.get('platform'))}",
             f"when: {esc(started)} → {esc(ended)} ({esc(tz.key)})",
             f"models: {esc(', '.join(doc.get('models') or []) or '–')}",
             f"tokens: {esc(token_line)}",
             f"cost: {esc(cost)}",
             f"knowledge: {esc(k.get('state') or '?')}"]
    if adverse:
        lines.append(f"⚠️ adverse events: {adverse}")
    prompt, answer = report.first_exchange(doc)
    if prompt:
        lines += ["", bold("First prompt"), f"<blockquote>{esc(prompt)}</blockquote>"]
    if answer:
        lines += [bold("First answer"), f"<blockquote>{esc(answer)}</blockquote>"]
    return "\n".join(lines)


async def _show_session(update: Update, context: Context, key: str) -> bool:
    """Summary, first exchange and the YAML as a document; False (and a message) when it cannot be shown."""
    rt = runtime(context)
    try:
        who = await _client(update, context)
        opened = await asyncio.to_thread(report.open_session, rt.settings, who, key)
    except report.ERRORS as exc:
        await _error(update, context, exc)
        return False
    await reply(update, context, _session_html(opened, rt.settings.zone))
    await context.bot.send_document(_chat_id(update), document=opened.yaml, filename=f"{opened.found.key}.yaml",
                                    caption=f"{opened.found.key} (archived YAML)", parse_mode=None)
    return True


async def session(update: Update, context: Context) -> None:
    args = _args(context)
    if not args:
        await reply(update, context, "Usage: /session KEY — a key from /search or /sessions (or its start).")
        return
    await _show_session(update, context, args[0])


# ------------------------------------------------------------------------------------------------ /sessions

async def sessions(update: Update, context: Context) -> None:
    rt = runtime(context)
    try:
        who = await _client(update, context)
        rows = await asyncio.to_thread(report.latest, rt.settings, who, SESSIONS_LIMIT)
    except report.ERRORS as exc:
        await _error(update, context, exc)
        return
    if not rows:
        await reply(update, context, f"🗂 No sessions archived for client {bold(who)} yet. /import runs an import.")
        return
    lines = [f"🗂 Latest {len(rows)} session(s) of client {bold(who)}:"]
    buttons = []
    for i, r in enumerate(rows, 1):
        when = report.local_time(r["ended"] or r["started"], rt.settings.zone)
        lines.append(f"{i}. {bold(r['title'] or '(untitled)')}\n    {esc(when)} · {esc(report.money(r['cost_usd']))}"
                     f" · {esc(r['platform'])}")
        buttons.append([(f"📄 {i}. {(r['title'] or r['key'])[:40]}", _callback(OPEN, r["key"]))])
    await reply(update, context, "\n".join(lines), buttons)


# ------------------------------------------------------------------------------------------------ /import

async def _edit(bot: Bot, chat_id: int, message_id: int, html: str) -> None:
    try:
        await bot.edit_message_text(html, chat_id=chat_id, message_id=message_id, parse_mode=PARSE_MODE)
    except BadRequest as exc:  # the same text again, or the admin deleted the message: nothing to do
        if "not modified" not in str(exc).lower() and "not found" not in str(exc).lower():
            raise


def _progress_html(done: int, total: int, what: str) -> str:
    where = what.rsplit("/", 1)[-1][:60]
    if not total:
        return "⏳ LORE import: looking for sources…"
    return f"⏳ LORE import: {done}/{total} source(s)…\n{code(where)}"


async def import_(update: Update, context: Context) -> None:
    """Run an import now; one message shows progress (edited at most every EDIT_INTERVAL s), then the summary."""
    rt = runtime(context)
    chat_id = _chat_id(update)
    msg = await context.bot.send_message(chat_id, "⏳ LORE import: starting…", parse_mode=PARSE_MODE)
    state: dict[str, Any] = {"done": 0, "total": 0, "what": ""}

    def progress(done: int, total: int, what: str) -> None:  # from the import's thread: only note it
        state.update(done=done, total=total, what=what)

    task = asyncio.ensure_future(asyncio.to_thread(report.run_import, rt, "command", progress))
    shown = ""
    while True:
        finished, _ = await asyncio.wait({task}, timeout=EDIT_INTERVAL)
        if finished:
            break
        html = _progress_html(state["done"], state["total"], state["what"])
        if html != shown:
            await _edit(context.bot, chat_id, msg.message_id, html)
            shown = html
    try:
        summary = task.result()
    except report.ImportBusy as exc:
        await _edit(context.bot, chat_id, msg.message_id, f"⚠️ {esc(exc)}")
        return
    head = "✅ LORE import done" if not summary.errors else "⚠️ LORE import finished with errors"
    lines = [bold(head), *(esc(line) for line in report.summary_lines(summary.to_dict()))]
    await _edit(context.bot, chat_id, msg.message_id, "\n".join(lines)[:4000])


# ------------------------------------------------------------------------------------------------ /usage

def _usage_table(by: str, rows: list[usage_mod.Row], total: usage_mod.Row) -> str:
    def name(r: usage_mod.Row) -> str:
        label = f"{r.label} ({r.group.split(':')[-1][:8]})" if r.label else r.group
        return label if len(label) <= 18 else label[:17] + "…"

    body = [(name(r), report.tokens(r.total_tokens), f"{r.cost_usd:.4f}" + ("*" if r.unpriced_calls else ""))
            for r in rows]
    body.append(("total", report.tokens(total.total_tokens),
                 f"{total.cost_usd:.4f}" + ("*" if total.unpriced_calls else "")))
    head = (by, "tokens", "cost $")
    w = [max(len(row[i]) for row in [head, *body]) for i in range(3)]
    out = [f"{head[0]:<{w[0]}}  {head[1]:>{w[1]}}  {head[2]:>{w[2]}}", "-" * (w[0] + w[1] + w[2] + 4)]
    for i, (a, b, c) in enumerate(body):
        if i == len(body) - 1:
            out.append("-" * (w[0] + w[1] + w[2] + 4))
        out.append(f"{a:<{w[0]}}  {b:>{w[1]}}  {c:>{w[2]}}")
    return "\n".join(out)


async def usage(update: Update, context: Context) -> None:
    rt = runtime(context)
    by, since_arg = "day", None
    for a in _args(context):
        if a.lower() in usage_mod.GROUPS:
            by = a.lower()
        else:
            since_arg = a
    try:
        since = report.usage_since(since_arg, rt.settings.zone)
        who = await _client(update, context)
        rows, total = await asyncio.to_thread(report.usage, rt.settings, who, by, since)
    except report.ERRORS as exc:
        await _error(update, context, exc)
        return
    head = f"📊 Usage of client {bold(who)} by {esc(by)} since {esc(since)} ({esc(rt.settings.tz)})"
    if not rows:
        await reply(update, context, f"{head}\nNo model calls in this period.")
        return
    lines = [head, f"<pre>{esc(_usage_table(by, rows, total))}</pre>",
             f"Total: {total.total_tokens:,} tokens (in {total.input_tokens:,} · out {total.output_tokens:,} · "
             f"cache write {total.cache_creation_input_tokens:,} · cache read {total.cache_read_input_tokens:,}), "
             f"{total.calls:,} call(s), {esc(report.money(total.cost_usd))}"]
    if total.unpriced_calls:
        lines.append(f"* {total.unpriced_calls} call(s) of models without a price are not in the cost")
    await reply(update, context, "\n".join(lines))


# ------------------------------------------------------------------------------------------------ buttons

async def on_button(update: Update, context: Context) -> None:
    """`lore:open:<key>` opens a session of the chat's client; `lore:client:<name>` switches the client."""
    query = update.callback_query
    assert query is not None and query.data is not None
    rt = runtime(context)
    if query.data.startswith(OPEN):
        await query.answer()
        await _show_session(update, context, query.data.removeprefix(OPEN))
        return
    if query.data.startswith(CLIENT):
        try:
            name = await asyncio.to_thread(report.resolve_client_ref, rt.settings, query.data.removeprefix(CLIENT))
            await asyncio.to_thread(report.set_client, rt, _chat_id(update), name)
            known = await asyncio.to_thread(report.known_clients, rt.settings)
        except report.ERRORS as exc:
            await query.answer(str(exc)[:190], show_alert=True)
            return
        await query.answer(f"Client: {name}")
        if query.message is not None:
            text, buttons = _client_view(name, known)
            try:
                await context.bot.edit_message_text(text, chat_id=_chat_id(update),
                                                    message_id=query.message.message_id, parse_mode=PARSE_MODE,
                                                    reply_markup=keyboard(buttons))
            except BadRequest as exc:
                if "not modified" not in str(exc).lower():
                    raise
        return
    await query.answer("This button is no longer active.")


COMMANDS = [
    Command("client", "LORE: show or set this chat's client (/client NAME)", client),
    Command("search", "LORE: search the current client's sessions", search),
    Command("session", "LORE: one session's summary and its YAML (/session KEY)", session),
    Command("sessions", "LORE: the current client's latest sessions", sessions, button="🗂 Sessions"),
    Command("import", "LORE: import new AI sessions now", import_),
    Command("usage", "LORE: tokens and cost (/usage [day|month|model|client|project|session] [since])", usage),
]
