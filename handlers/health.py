"""Host health in Telegram: /health (check now) and /events (what the watch logged)."""

from __future__ import annotations

import asyncio
from datetime import datetime

from telegram import Update

from bot import wsl_audit
from bot.context import Context, reply, runtime
from bot.render import bold, esc
from handlers import Command
from services.health import events, paths, render, runner, thresholds

EVENTS_USAGE = ("Usage: /events [since], e.g. /events 90m, /events 7d or /events 2026-11-20 (midnight in the bot's "
                "time zone); default: 24h")


async def health(update: Update, context: Context) -> None:
    try:
        limits = await asyncio.to_thread(thresholds.load)  # read each time: edits apply without a restart
    except thresholds.ThresholdsError as exc:
        await reply(update, context, f"⚠️ Cannot check host health: {esc(exc)}")
        return
    # one_shot saves to its own samples file, so /health never takes a delta the watch job is waiting for
    report = await asyncio.to_thread(runner.one_shot, root=wsl_audit.root(), thresholds=limits,
                                     data_dir=paths.data_dir())
    lines = render.compact(report, wsl_audit.host_name())
    await reply(update, context, "\n".join([bold(lines[0]), *(esc(line) for line in lines[1:])]))


async def events_cmd(update: Update, context: Context) -> None:
    args = context.args or []
    if len(args) > 1:
        await reply(update, context, esc(f"One argument at most. {EVENTS_USAGE}"))
        return
    rt = runtime(context)
    tz = rt.settings.zone
    try:
        since = events.parse_since(args[0] if args else "24h", tz=tz)  # a date is midnight where the title says
    except events.OutOfRange as exc:
        await reply(update, context, esc(f"{exc}."))
        return
    except ValueError:
        await reply(update, context, esc(f"{args[0]!r} is not a time. {EVENTS_USAGE}"))
        return
    result = await asyncio.to_thread(events.query, paths.events_dir(), since=since)
    title = f"🩺 Host health events since {datetime.fromtimestamp(since, tz):%Y-%m-%d %H:%M} {rt.settings.tz}"
    lines = render.events_text(result, since, tz)
    await reply(update, context, "\n".join([bold(title), *(esc(line) for line in lines)]))


COMMANDS = [
    Command("health", "Host health now: memory, disk, Docker, .wslconfig", health, button="🩺 Health"),
    Command("events", "Host health events of the last 24 h (/events 7d)", events_cmd),
]
