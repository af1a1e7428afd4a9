"""The event log: one JSON object per line in events/YYYY-MM-DD.jsonl (UTC dates). Stdlib only.

Records (every one has ts, ISO 8601 UTC with Z, and kind):

    observation   a warn/crit finding of a run: host, check, subject, level, value, unit, summary, hint
    fired | repeat | escalated | resolved
                  an alert notice: the same fields plus since (ISO, when the condition started) and duration (s)
    notify_failed a message that could not be sent: host, error, keys, text

`level` is the finding's status on observations too, so one field filters every kind.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

from services.health.alerting import Notice
from services.health.model import RANK, Finding

_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.jsonl$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class OutOfRange(ValueError):
    """A since before the year 1 (or past 9999): no day file can be named for it."""


@dataclass(frozen=True)
class QueryResult:
    records: list[dict[str, Any]]
    skipped_lines: int  # lines that were not a whole record (corrupt, or cut short by a crash)


def iso(t: float) -> str:
    """Epoch seconds as ISO 8601 UTC with millisecond precision and a Z: 2026-11-20T14:03:07.123Z."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_ts(text: str, tz: tzinfo = UTC) -> float:
    """An ISO 8601 time as epoch seconds; a time without an offset is taken in `tz` (UTC unless told)."""
    dt = datetime.fromisoformat(text)
    return (dt if dt.tzinfo else dt.replace(tzinfo=tz)).timestamp()


def observation(finding: Finding, now: float, host: str) -> dict[str, Any]:
    return {"ts": iso(now), "kind": "observation", "host": host, "check": finding.check,
            "subject": finding.subject, "level": finding.status, "value": finding.value, "unit": finding.unit,
            "summary": finding.summary, "hint": finding.hint}


def from_notice(notice: Notice, now: float, host: str) -> dict[str, Any]:
    return {"ts": iso(now), "kind": notice.kind, "host": host, "check": notice.check, "subject": notice.subject,
            "level": notice.level, "value": notice.value, "unit": notice.unit, "summary": notice.summary,
            "hint": notice.hint, "since": iso(notice.since), "duration": round(notice.duration, 3)}


def notify_failed(notices: Iterable[Notice], text: str, error: str, now: float, host: str) -> dict[str, Any]:
    return {"ts": iso(now), "kind": "notify_failed", "host": host, "error": error,
            "keys": [n.key for n in notices], "text": text}


def append(events_dir: Path, records: Iterable[dict[str, Any]], now: float) -> None:
    """Append records to the day file of `now` (UTC), one write per line: O_APPEND keeps concurrent lines whole."""
    lines = [json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in records]
    if not lines:
        return
    events_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = events_dir / f"{datetime.fromtimestamp(now, UTC).date().isoformat()}.jsonl"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        for line in lines:
            data = line.encode("utf-8", "backslashreplace")
            written = os.write(fd, data)
            while written < len(data):  # a short write (disk full, signal): finish the line rather than cut it
                written += os.write(fd, data[written:])
    finally:
        os.close(fd)


def query(events_dir: Path, *, since: float | None = None, level: str | None = None,
          check: str | None = None) -> QueryResult:
    """Records at or after `since`, at `level` or worse, for `check` (an exact id or a prefix: "docker"), by time.

    Only day files that can hold records at or after `since` are read.
    """
    if level is not None and level not in RANK:
        raise ValueError(f"level {level!r}: use one of {', '.join(RANK)}")
    first_day = datetime.fromtimestamp(since, UTC).date() if since is not None else date.min
    try:
        names = sorted(n for n in os.listdir(events_dir) if _FILE.match(n))
    except FileNotFoundError:
        return QueryResult([], 0)
    found: list[tuple[float, dict[str, Any]]] = []
    skipped = 0
    for name in names:
        if _day(name) < first_day:
            continue
        with open(events_dir / name, "rb") as fh:
            for raw in fh:
                parsed = _parse_line(raw)
                if parsed is None:
                    skipped += 1
                    continue
                t, rec = parsed
                if (since is None or t >= since) and _matches(rec, level, check):
                    found.append((t, rec))
    found.sort(key=lambda x: x[0])  # stable: same-time records keep their file order
    return QueryResult([r for _, r in found], skipped)


def prune(events_dir: Path, keep_days: float, now: float) -> int:
    """Delete day files older than `keep_days` before `now`'s UTC date (0: keep everything); the number deleted.

    A persistent warning at a 30 s interval writes ~2,900 observation lines a day, so the log needs an end.
    """
    if keep_days <= 0:
        return 0
    cutoff = datetime.fromtimestamp(now, UTC).date() - timedelta(days=int(keep_days))
    try:
        names = [n for n in os.listdir(events_dir) if _FILE.match(n)]
    except FileNotFoundError:
        return 0
    removed = 0
    for name in names:
        if _day(name) < cutoff:
            (events_dir / name).unlink(missing_ok=True)
            removed += 1
    return removed


def _day(name: str) -> date:
    try:
        return date.fromisoformat(name[:10])
    except ValueError:
        return date.max  # a name like 2026-13-40 is nobody's day; read it rather than lose it


def _parse_line(raw: bytes) -> tuple[float, dict[str, Any]] | None:
    if not raw.strip():
        return None
    try:
        rec = json.loads(raw)
        if not isinstance(rec, dict) or not isinstance(rec.get("ts"), str) or not isinstance(rec.get("kind"), str):
            return None
        return parse_ts(rec["ts"]), rec
    except ValueError:  # JSONDecodeError and a bad timestamp are both ValueErrors
        return None


def _matches(rec: dict[str, Any], level: str | None, check: str | None) -> bool:
    if level is not None:
        got_level = rec.get("level")
        if not isinstance(got_level, str) or RANK.get(got_level, -1) < RANK[level]:
            return False
    if check is not None:
        got = rec.get("check")
        if not isinstance(got, str) or not (got == check or got.startswith(check + ".")):
            return False
    return True


def parse_since(text: str, now: float | None = None, tz: tzinfo = UTC) -> float:
    """"90m", "24h", "7d" (ago from `now`), "2026-11-20" (midnight in `tz`, UTC unless told) or an ISO time (without
    an offset: in `tz`) → epoch seconds. The CLI keeps UTC; the bot passes its own time zone."""
    m = _DURATION.match(text)
    if m:
        since = (time.time() if now is None else now) - float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
    else:
        try:
            since = parse_ts(text.strip(), tz)
        except ValueError:
            raise ValueError(f"since {text!r} is not a time: use a duration like 90m, 24h or 7d (units s m h d w), "
                             f"a date like 2026-11-20, or an ISO time like 2026-11-20T14:00Z") from None
    try:
        datetime.fromtimestamp(since, UTC)  # query() turns it into a day; before year 1 that fails obscurely
    except (OverflowError, OSError, ValueError):
        where = "too far back (before the year 1)" if since < 0 else "too far ahead (after the year 9999)"
        raise OutOfRange(f"since {text!r} is {where}: use e.g. 30d or a date like 2026-11-20") from None
    return since
