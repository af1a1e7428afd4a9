"""wsl-audit's reports as plain text: the terminal table, the compact Telegram report, the last day's summary.

Plain strings only: the caller escapes for Telegram HTML. Stdlib only (the one-shot prints through here).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, tzinfo
from typing import Any

from services.health.alerting import human_duration
from services.health.events import QueryResult, parse_ts
from services.health.model import RANK, Finding, Report

ICON = {"ok": "✅", "info": "ℹ️", "warn": "🟡", "crit": "🔴"}
LABEL = {"ok": "ok", "info": "info", "warn": "WARN", "crit": "CRIT"}


def _where(f: Finding) -> str:
    return f"{f.check} {f.subject}".rstrip() if f.subject else f.check


def table(report: Report, *, color: bool | None = None) -> str:
    """Worst first: status, check (and subject), summary, then the hint on its own indented line."""
    if color is None:
        color = os.isatty(1) and not os.environ.get("NO_COLOR")
    paint = {"crit": "\033[31m", "warn": "\033[33m", "info": "\033[2m", "ok": "\033[32m"} if color else {}
    reset = "\033[0m" if color else ""
    rows = report.sorted()
    width = min(40, max((len(_where(f)) for f in rows), default=0))
    lines = []
    for f in rows:
        status = f"{paint.get(f.status, '')}{LABEL[f.status]:<4}{reset}"
        lines.append(f"{status}  {_where(f):<{width}}  {f.summary}")
        if f.hint and RANK[f.status] >= RANK["warn"]:  # info hints live in --json; the table stays short
            lines.append(f"      {'':<{width}}  → {f.hint}")
    counts = Counter(f.status for f in rows)
    lines.append(f"\n{overall(report)}: {counts['crit']} critical, {counts['warn']} warning, {counts['info']} info, "
                 f"{counts['ok']} ok ({report.took_ms:.0f} ms)")
    return "\n".join(lines)


def overall(report: Report) -> str:
    return {"ok": "healthy", "info": "healthy", "warn": "warning", "crit": "CRITICAL"}[report.worst]


def compact(report: Report, host: str, *, limit: int = 15) -> list[str]:
    """The Telegram /health answer: a headline, then warn/crit first with hints, then a one-line tally of the rest."""
    rows = report.sorted()
    bad = [f for f in rows if RANK[f.status] >= RANK["warn"]]
    lines = [f"{ICON[report.worst]} {host}: {overall(report)}"]
    for f in bad[:limit]:
        lines.append(f"{ICON[f.status]} {_where(f)}: {f.summary}")
        if f.hint:
            lines.append(f"   → {f.hint}")
    if len(bad) > limit:
        lines.append(f"… and {len(bad) - limit} more warnings (wsl-audit in a terminal lists them all)")
    rest = [f for f in rows if RANK[f.status] < RANK["warn"]]
    key_facts = [f.summary for f in rest if f.check in ("memory.used", "swap.used", "docker.engine")
                 or (f.check == "disk.used")]
    if key_facts:
        lines.append("")
        lines += [f"• {s}" for s in key_facts[:6]]
    counts = Counter(f.status for f in rows)
    lines.append(f"{counts['crit']} critical, {counts['warn']} warning, {counts['ok'] + counts['info']} fine "
                 f"({report.took_ms:.0f} ms)")
    return lines


def day_summary(records: Iterable[dict[str, Any]]) -> list[str]:
    """Digest lines from the event log: the worst level per check, alerts fired and resolved, observation counts."""
    worst: dict[str, str] = {}
    observed: Counter[str] = Counter()
    fired: Counter[str] = Counter()
    resolved = 0
    for rec in records:
        check, level, kind = str(rec.get("check", "?")), str(rec.get("level", "")), rec.get("kind")
        if kind == "observation":
            observed[check] += 1
        elif kind in ("fired", "escalated"):
            fired[check] += 1
        elif kind == "resolved":
            resolved += 1
            continue
        if level in RANK and RANK[level] > RANK.get(worst.get(check, "ok"), 0):
            worst[check] = level
    if not worst and not resolved:
        return []
    lines = []
    for check, level in sorted(worst.items(), key=lambda kv: (-RANK[kv[1]], kv[0])):
        bits = [f"{observed[check]} observation{'s' if observed[check] != 1 else ''}"] if observed[check] else []
        if fired[check]:
            bits.append(f"{fired[check]} alert{'s' if fired[check] != 1 else ''}")
        lines.append(f"{ICON[level]} {check}: worst {LABEL[level]}" + (f" ({', '.join(bits)})" if bits else ""))
    if resolved:
        lines.append(f"✅ {resolved} alert{'s' if resolved != 1 else ''} resolved")
    return lines


# --- /events: the event log for people -----------------------------------------------------------------------

MAX_EVENTS = 30  # one screen; the terminal (`wsl-audit events`) lists them all
MAX_LINE = 300  # a runaway summary must not push the other events out of the message
ALERT_KINDS = ("fired", "repeat", "escalated", "resolved", "notify_failed")


def _when(rec: dict[str, Any], tz: tzinfo) -> str:
    try:
        return datetime.fromtimestamp(parse_ts(str(rec["ts"])), tz).strftime("%m-%d %H:%M")
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
    return _clip(f"{ICON.get(level, '•')} {when} {word} {where}: {rec.get('summary', '')}")


def events_text(result: QueryResult, since: float, tz: tzinfo) -> list[str]:
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
