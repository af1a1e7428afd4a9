"""Host health in Telegram: /health (check now) and /events (what the watch logged)."""

from __future__ import annotations

import asyncio
from datetime import datetime, tzinfo
from typing import Any

from telegram import Update

from bot import wsl_audit
from bot.context import Context, reply, runtime
from bot.render import bold, esc
from handlers import Command
from services.health import events, paths, render, runner, thresholds
from services.health.alerting import human_duration

MAX_EVENTS = 30  # one screen; the terminal (`wsl-audit events`) lists them all
MAX_LINE = 300  # a runaway summary must not push the other events out of the message
ALERT_KINDS = ("fired", "repeat", "escalated", "resolved", "notify_failed")
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


def _when(rec: dict[str, Any], tz: tzinfo) -> str:
    try:
        return datetime.fromtimestamp(events.parse_ts(str(rec["ts"])), tz).strftime("%m-%d %H:%M")
    except (KeyError, ValueError):
        return "?"


def _clip(text: str) -> str:
    return text if len(text) <= MAX_LINE else text[:MAX_LINE - 1] + "…"


def event_line(rec: dict[str, Any], tz: tzinfo) -> str:
    """One alert record as a plain line: icon, local time, what happened, to what."""
    when, kind, level = _when(rec, tz), rec.get("kind"), str(rec.get("level") or "")
    where = f"{rec.get('check', '?')} {rec.get('subject') or ''}".rstrip()
    if kind == "notify_failed":
        return _clip(f"⚠️ {when} alert not sent: {rec.get('error', '?')}")
    if kind == "resolved":
        duration = rec.get("duration")
        after = f" after {human_duration(duration)}" if isinstance(duration, int | float) else ""
        return _clip(f"✅ {when} resolved {where}{after}")
    word = {"fired": "fired", "repeat": "still", "escalated": "escalated"}.get(str(kind), str(kind))
    return _clip(f"{render.ICON.get(level, '•')} {when} {word} {where}: {rec.get('summary', '')}")


def events_text(result: events.QueryResult, since: float, tz: tzinfo) -> list[str]:
    """Alerts newest last (at most MAX_EVENTS), then a tally of the warn/crit observations between them."""
    alerts = [r for r in result.records if r.get("kind") in ALERT_KINDS]
    observed = [r for r in result.records if r.get("kind") == "observation"]
    shown = alerts[-MAX_EVENTS:]
    lines = [f"… {len(alerts) - len(shown)} older"] if len(alerts) > len(shown) else []
    lines += [event_line(r, tz) for r in shown]
    if observed:
        checks = sorted({str(r.get("check", "?")) for r in observed})
        lines.append(f"{len(observed)} warn/crit observation(s) of {', '.join(checks)}"
                     + ("" if alerts else ", none long enough to alert"))
    if not lines:
        start = datetime.fromtimestamp(since, tz).strftime("%Y-%m-%d %H:%M")
        lines.append(f"Nothing happened since {start}: no alerts, warnings or resolutions in the event log.")
    if result.skipped_lines:
        lines.append(f"({result.skipped_lines} unreadable line(s) skipped)")
    return lines


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
    await reply(update, context, "\n".join([bold(title), *(esc(line) for line in events_text(result, since, tz))]))


COMMANDS = [
    Command("health", "Host health now: memory, disk, Docker, .wslconfig", health, button="🩺 Health"),
    Command("events", "Host health events of the last 24 h (/events 7d)", events_cmd),
]
