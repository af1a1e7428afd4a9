"""Token and cost totals over the archive, from the index's `calls` table (one row per billed call, deduplicated at
import), grouped by session, day, month, model, client or project, in any time zone.

Days and months are local to `tz`: calls are first summed per quarter hour in SQL (every UTC offset in use is a
multiple of 15 minutes), then each quarter hour is placed on its local day, so a report over 100k calls stays a
few milliseconds of SQL plus a small loop.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

GROUPS = ("session", "day", "month", "model", "client", "project")
QUARTER = 900


class UsageError(Exception):
    pass


@dataclass
class Row:
    group: str
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    cost_usd: float = 0.0
    unpriced_calls: int = 0
    calls: int = 0
    label: str | None = None  # e.g. a session's title
    models: set[str] = field(default_factory=set)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens

    def add(self, i: int, o: int, cc: int, cr: int, cost: float, unpriced: int, calls: int) -> None:
        self.input_tokens += i
        self.output_tokens += o
        self.cache_creation_input_tokens += cc
        self.cache_read_input_tokens += cr
        self.cost_usd += cost
        self.unpriced_calls += unpriced
        self.calls += calls

    def to_dict(self) -> dict[str, Any]:
        return {"group": self.group, "label": self.label, "input_tokens": self.input_tokens,
                "output_tokens": self.output_tokens, "cache_creation_input_tokens": self.cache_creation_input_tokens,
                "cache_read_input_tokens": self.cache_read_input_tokens, "total_tokens": self.total_tokens,
                "cost_usd": round(self.cost_usd, 6), "unpriced_calls": self.unpriced_calls, "calls": self.calls,
                "models": sorted(self.models)}


def _bound(d: str | None, tz: ZoneInfo, end: bool) -> int | None:
    """A date (local midnight in tz) or a full timestamp, as epoch seconds. `until` is inclusive for dates."""
    if not d:
        return None
    try:
        if len(d) == 10:
            day = date.fromisoformat(d)
            if end:
                day = date.fromordinal(day.toordinal() + 1)
            return int(datetime.combine(day, time(0), tz).timestamp())
        ts = datetime.fromisoformat(d.replace("Z", "+00:00"))
        return int((ts if ts.tzinfo else ts.replace(tzinfo=tz)).timestamp())
    except ValueError:
        raise UsageError(f"{d!r} is not a date: use YYYY-MM-DD or an ISO timestamp") from None


_SUMS = ("sum(coalesce(input,0)), sum(coalesce(output,0)), sum(coalesce(cache_creation,0)), "
         "sum(coalesce(cache_read,0)), sum(coalesce(cost_usd,0)), "
         "sum(cost_usd IS NULL AND coalesce(input,0)+coalesce(output,0)+coalesce(cache_creation,0)"
         "+coalesce(cache_read,0) > 0), count(*), group_concat(DISTINCT model)")


def report(conn: sqlite3.Connection, by: str, clients: list[str] | None = None, since: str | None = None,
           until: str | None = None, tz: ZoneInfo | None = None) -> list[Row]:
    if by not in GROUPS:
        raise UsageError(f"unknown grouping {by!r}: use one of {', '.join(GROUPS)}")
    tz = tz or ZoneInfo("UTC")
    where: list[str] = ["1=1"]
    args: list[Any] = []
    if clients is not None:
        where.append(f"client IN ({','.join('?' * len(clients))})")
        args += clients
    lo, hi = _bound(since, tz, False), _bound(until, tz, True)
    if lo is not None:
        where.append("ts >= ?")
        args.append(lo)
    if hi is not None:
        where.append("ts < ?")
        args.append(hi)
    cond = " AND ".join(where)
    rows: dict[str, Row] = {}
    if by in ("day", "month"):
        q = f"SELECT ts / {QUARTER}, {_SUMS} FROM calls WHERE {cond} GROUP BY 1"
        for bucket, i, o, cc, cr, cost, unp, n, models in conn.execute(q, args):
            if bucket is None:
                label = "unknown"
            else:
                local = datetime.fromtimestamp(bucket * QUARTER, UTC).astimezone(tz)
                label = local.strftime("%Y-%m-%d" if by == "day" else "%Y-%m")
            r = rows.setdefault(label, Row(label))
            r.add(i, o, cc, cr, cost, unp, n)
            r.models.update(m for m in (models or "").split(",") if m)
    else:
        col = {"session": "session_key", "model": "model", "client": "client", "project": "project"}[by]
        q = f"SELECT {col}, {_SUMS} FROM calls WHERE {cond} GROUP BY 1"
        if by == "session":  # with each session's title as its label
            q = f"SELECT g.*, s.title FROM ({q}) g LEFT JOIN sessions s ON s.key = g.session_key"
        for g, i, o, cc, cr, cost, unp, n, models, *label in conn.execute(q, args):
            r = rows.setdefault(str(g or "unknown"), Row(str(g or "unknown"), label=label[0] if label else None))
            r.add(i, o, cc, cr, cost, unp, n)
            r.models.update(m for m in (models or "").split(",") if m)
    return sorted(rows.values(), key=lambda r: r.group)


def total(rows: list[Row]) -> Row:
    t = Row("total")
    for r in rows:
        t.add(r.input_tokens, r.output_tokens, r.cache_creation_input_tokens, r.cache_read_input_tokens,
              r.cost_usd, r.unpriced_calls, r.calls)
        t.models |= r.models
    return t
