"""The alert state machine: which findings become Telegram alerts, when, and when they stop. Stdlib only.

Pure and clock-driven: `evaluate` takes `now` and mutates a plain dict (key "check|subject" → entry), which
`load_state`/`save_state` keep in alerts.json across restarts. An entry is

    status      "pending" (bad, not yet for pending_seconds) or "firing"
    level       "warn" or "crit" (while firing: the level the alert fired or escalated at; hysteresis holds it)
    first_seen  when the condition started (epoch seconds); durations count from here
    fired_at    when it fired (None while pending)
    last_sent   when its last fired/repeat/escalated notice was made (None while pending); repeats count from here
    last_value, summary, unit, hint   from the latest finding (a resolved-by-absence notice has nothing newer)
    notified    whether any notice of this alert passed notify_level (so its "resolved" is worth sending)

`evaluate` applies alerting.notify_level to set `notified`; `for_telegram` applies the same level to the notices.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from services.health.model import RANK, Finding
from services.health.thresholds import Alerting
from services.sentinel.atomic import write_json

log = logging.getLogger(__name__)

Kind = Literal["fired", "repeat", "resolved", "escalated"]
STATE_VERSION = 1
TELEGRAM_LIMIT = 4096  # Telegram's limit, counted in UTF-16 code units (an emoji is two)
_MAX_LINE = 600  # one runaway summary must not crowd out every other alert
_LEVEL_WORDS = {"crit": ("critical", "critical"), "warn": ("warning", "warnings")}


@dataclass(frozen=True, slots=True)
class Notice:
    kind: Kind
    key: str
    check: str
    subject: str
    level: str  # "warn" | "crit": the alert's level (for "resolved", the level it was firing at)
    value: float | None
    unit: str
    summary: str
    hint: str
    since: float  # first_seen: when the condition started
    duration: float  # seconds from `since` to this notice
    notified: bool = True  # "resolved" only: whether the alert ever passed notify_level (for_telegram reads it)


def load_state(path: Path) -> dict[str, dict[str, Any]]:
    """The saved alert state; missing → empty; unreadable or malformed → empty, the file kept as `<name>.corrupt`."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    try:
        doc = json.loads(raw)
        alerts = doc["alerts"] if isinstance(doc, dict) and doc.get("version") == STATE_VERSION else None
        if not isinstance(alerts, dict) or not all(_valid_entry(k, e) for k, e in alerts.items()):
            raise ValueError("not an alert state document")
    except (ValueError, KeyError, UnicodeDecodeError) as exc:
        aside = path.with_name(path.name + ".corrupt")
        os.replace(path, aside)  # keep the evidence; starting fresh at worst re-fires what was firing
        log.warning("alert state %s was unreadable (%s); moved it to %s and started with no alerts",
                    path, exc, aside)
        return {}
    return alerts


def save_state(path: Path, state: dict[str, dict[str, Any]]) -> None:
    """Write the state atomically (temp file + rename), so a crash leaves the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(str(path), {"version": STATE_VERSION, "alerts": state})


def evaluate(state: dict[str, dict[str, Any]], findings: Iterable[Finding], now: float, alerting: Alerting,
             checks_ran: set[str] | None = None) -> list[Notice]:
    """Advance `state` (in place) by one run's findings at time `now`; the notices this run produces.

    `checks_ran`: the check ids that ran this run (default: those with a finding). A firing alert whose key is
    absent is resolved only if its check ran, so a check that could not run (Docker down) resolves nothing.
    """
    current: dict[str, Finding] = {}
    for f in findings:  # one finding per key; if a check repeats a key, the worst counts
        if f.key not in current or RANK[f.status] > RANK[current[f.key].status]:
            current[f.key] = f
    ran = checks_ran if checks_ran is not None else {f.check for f in current.values()}
    notices: list[Notice] = []
    for key, f in current.items():
        entry = state.get(key)
        if entry is None:
            if RANK[f.status] < RANK["warn"]:
                continue
            entry = state[key] = {"status": "pending", "level": f.status, "first_seen": now, "fired_at": None,
                                  "last_sent": None, "notified": False}
        notice = _step(state, key, entry, f, now, alerting)
        if notice is not None:
            notices.append(notice)
    for key in [k for k in state if k not in current]:
        entry = state[key]
        if key.split("|", 1)[0] not in ran:
            continue  # the check did not run: we know nothing new about this key
        del state[key]
        if entry["status"] == "firing":
            notices.append(_notice("resolved", key, entry, now))
    return notices


def _step(state: dict[str, dict[str, Any]], key: str, entry: dict[str, Any], f: Finding, now: float,
          alerting: Alerting) -> Notice | None:
    bad = RANK[f.status] >= RANK["warn"]
    if entry["status"] == "pending":
        if not bad:
            del state[key]  # a blip shorter than pending_seconds leaves no trace
            return None
        _remember(entry, f, f.status)
        if now - entry["first_seen"] < alerting.pending_seconds:
            return None
        entry.update(status="firing", fired_at=now)
        return _sent("fired", key, entry, now, alerting)
    level = _held_level(f, entry["level"])
    if level is None:
        del state[key]
        _remember(entry, f, entry["level"])
        return _notice("resolved", key, entry, now)
    if RANK[level] > RANK[entry["level"]]:
        _remember(entry, f, level)
        return _sent("escalated", key, entry, now, alerting)  # bad long enough already: no second pending
    _remember(entry, f, level)  # a lower level is taken silently: downgrades are not worth a message
    if now - entry["last_sent"] >= alerting.repeat_seconds:
        return _sent("repeat", key, entry, now, alerting)
    return None


def _held_level(f: Finding, level: str) -> str | None:
    """The level a firing alert stands at given this finding: the raw status, unless hysteresis holds a higher one.

    Returns None when the alert clears.
    """
    raw = f.status if RANK[f.status] >= RANK["warn"] else None
    candidate: str | None = level
    while candidate is not None and (raw is None or RANK[raw] < RANK[candidate]):
        if _within_margin(f, candidate):
            return candidate
        candidate = "warn" if candidate == "crit" else None
    return raw


def _within_margin(f: Finding, level: str) -> bool:
    """Whether the value is still short of `clear_margin` past `level`'s threshold (so the alert holds)."""
    band = f.band
    if band is None or f.value is None:
        return False  # nothing numeric to judge by: the raw status decides
    threshold = band.crit if level == "crit" else band.warn
    if threshold is None:
        return False
    if band.higher_is_worse:
        return f.value > threshold - band.clear_margin
    return f.value < threshold + band.clear_margin


def _remember(entry: dict[str, Any], f: Finding, level: str) -> None:
    entry.update(level=level, last_value=f.value, summary=f.summary, unit=f.unit, hint=f.hint)


def _sent(kind: Kind, key: str, entry: dict[str, Any], now: float, alerting: Alerting) -> Notice:
    entry["last_sent"] = now
    if RANK[entry["level"]] >= RANK[alerting.notify_level]:
        entry["notified"] = True
    return _notice(kind, key, entry, now)


def _notice(kind: Kind, key: str, entry: dict[str, Any], now: float) -> Notice:
    check, _, subject = key.partition("|")
    return Notice(kind=kind, key=key, check=check, subject=subject, level=entry["level"],
                  value=entry.get("last_value"), unit=entry.get("unit", ""), summary=entry.get("summary", ""),
                  hint=entry.get("hint", ""), since=entry["first_seen"], duration=now - entry["first_seen"],
                  notified=bool(entry["notified"]))


def _valid_entry(key: object, e: object) -> bool:
    num = (int, float)
    return (isinstance(key, str) and "|" in key and isinstance(e, dict)
            and e.get("status") in ("pending", "firing") and e.get("level") in ("warn", "crit")
            and isinstance(e.get("first_seen"), num) and isinstance(e.get("notified"), bool)
            and (e["status"] == "pending" or (isinstance(e.get("fired_at"), num)
                                              and isinstance(e.get("last_sent"), num))))


def for_telegram(notices: Sequence[Notice], notify_level: str) -> list[Notice]:
    """The notices worth a message: alerts at notify_level or worse, and the resolution of those that were sent."""
    if notify_level not in ("warn", "crit"):
        raise ValueError(f"notify_level {notify_level!r}: use warn or crit")
    return [n for n in notices
            if (n.notified if n.kind == "resolved" else RANK[n.level] >= RANK[notify_level])]


def render(notices: Sequence[Notice], host: str) -> str:
    """One plain-text message for notices that fire together: header, one line per notice worst first, hints.

    Kept within Telegram's 4096 characters: lines that do not fit become "… and N more". Plain text: send it
    without a parse mode (or escape it).
    """
    active = sorted((n for n in notices if n.kind != "resolved"), key=lambda n: (-RANK[n.level], n.check, n.subject))
    resolved = sorted((n for n in notices if n.kind == "resolved"), key=lambda n: (n.check, n.subject))
    lines = [_clip(_line(n)) for n in [*active, *resolved]]
    header = _header(active, resolved, host)
    hints = list(dict.fromkeys(_clip(n.hint) for n in active if n.hint))
    body: list[str] = []
    for i, line in enumerate(lines):
        more = len(lines) - i - 1
        tail = [f"… and {more} more"] if more else []
        if _size([header, *body, line, *tail]) > TELEGRAM_LIMIT:
            body.append(f"… and {len(lines) - i} more")
            break
        body.append(line)
    text = "\n".join([header, *body])
    shown_hints: list[str] = []
    for h in hints:  # hints go last: they help, but an alert line matters more
        candidate = "\n".join([text, "", "What to do:", *shown_hints, f"• {h}"])
        if _size([candidate]) > TELEGRAM_LIMIT:
            break
        shown_hints.append(f"• {h}")
    if shown_hints:
        text = "\n".join([text, "", "What to do:", *shown_hints])
    return text


def _header(active: list[Notice], resolved: list[Notice], host: str) -> str:
    parts = []
    for level in ("crit", "warn"):
        n = sum(1 for x in active if x.level == level)
        if n:
            parts.append(f"{n} {_LEVEL_WORDS[level][n != 1]}")
    if resolved:
        parts.append(f"{len(resolved)} resolved")
    icon = "🔴" if any(n.level == "crit" for n in active) else "🟠" if active else "✅"
    return _clip(f"{icon} wsl-audit on {host}: {', '.join(parts) or 'nothing to report'}")


def _line(n: Notice) -> str:
    what = f"{n.check} {n.subject}" if n.subject else n.check
    if n.kind == "resolved":
        return f"resolved: {what} after {human_duration(n.duration)}"
    tail = {"fired": "for", "repeat": "still, for", "escalated": "now critical, for"}[n.kind]
    return f"{n.level.upper()} {what}: {n.summary} — {tail} {human_duration(n.duration)}"


def human_duration(seconds: float) -> str:
    """45 s, 3 min, 2 h 5 min, 3 d 4 h: two units at most, because nobody needs the seconds of a day-long alert."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} s"
    m, h, d = s // 60 % 60, s // 3600 % 24, s // 86400
    if d:
        return f"{d} d {h} h" if h else f"{d} d"
    if h:
        return f"{h} h {m} min" if m else f"{h} h"
    return f"{m} min"


def _clip(line: str) -> str:
    return line if len(line) <= _MAX_LINE else line[: _MAX_LINE - 1] + "…"


def _size(lines: list[str]) -> int:
    return len("\n".join(lines).encode("utf-16-le")) // 2
