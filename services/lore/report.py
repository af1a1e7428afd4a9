"""LORE for the bot and the digest: each chat's current client, client-scoped reads, recorded import runs, and
the digest's LORE section. Bot side (uses the settings and the SQL store); no Telegram import.

Client isolation: every read here takes the one client the chat works in and passes only that to the LORE
services (`search.search`, `service.find(allowed=…)`, `service.latest`, `usage.report`).
"""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import Engine, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from services import digest
from services.runtime import Runtime
from services.settings import Settings
from services.store.db import transaction
from services.store.models import LoreChatClient, LoreImportRun
from services.store.types import as_utc, utc_now

from . import index, service
from . import search as search_mod
from . import usage as usage_mod
from .clients import ClientsError
from .run import Progress, Summary
from .service import LoreError

log = logging.getLogger(__name__)

# What a LORE request can fail with, each carrying a message for the user.
ERRORS: tuple[type[Exception], ...] = (LoreError, ClientsError, search_mod.SearchError, usage_mod.UsageError)
TRIGGERS = ("daily", "command")


class ImportBusy(LoreError):
    """Another import is running in this process."""


# ------------------------------------------------------------------------------------------------ chat client

def known_clients(settings: Settings) -> list[str]:
    return service.client_names(settings)


def stored_client(engine: Engine, chat_id: int) -> str | None:
    with transaction(engine) as conn:
        return conn.execute(select(LoreChatClient.client).where(LoreChatClient.chat_id == chat_id)).scalar()


def current_client(rt: Runtime, chat_id: int) -> str:
    """The chat's client: the one it chose with /client, else the clients file's default."""
    return stored_client(rt.engine, chat_id) or service.clients(rt.settings).default


def set_client(rt: Runtime, chat_id: int, name: str) -> str:
    """Make `name` the chat's client; only clients the clients file knows are accepted."""
    known = known_clients(rt.settings)
    name = name.strip().lower()
    if name not in known:
        raise LoreError(f"unknown client {name!r}; known clients: {', '.join(known)}")
    values = {"chat_id": chat_id, "client": name, "set_at": utc_now()}
    with transaction(rt.engine, write=True) as conn:  # the store is SQLite or PostgreSQL: both upsert alike
        ins = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(LoreChatClient)
        conn.execute(ins.values(**values).on_conflict_do_update(
            index_elements=["chat_id"], set_={"client": name, "set_at": values["set_at"]}))
    return name


def resolve_client_ref(settings: Settings, ref: str) -> str:
    """A client named in a button (possibly cut to fit Telegram's 64 bytes): exact, else a unique prefix."""
    known = known_clients(settings)
    if ref in known:
        return ref
    matches = [n for n in known if n.startswith(ref)]
    if len(matches) != 1:
        raise LoreError(f"unknown client {ref!r}; known clients: {', '.join(known)}")
    return matches[0]


# ------------------------------------------------------------------------------------------------ reads (one client)

def search(settings: Settings, client: str, query: str, limit: int = 5) -> list[search_mod.Hit]:
    conn = service.connect(settings)
    try:
        return search_mod.search(conn, query, [client], None, limit)
    finally:
        conn.close()


@dataclass
class Opened:
    found: service.Found
    yaml: bytes


def open_session(settings: Settings, client: str, key: str) -> Opened:
    """A session of `client` by key (or a unique start of it), with its archived YAML."""
    f = service.find(settings, key, allowed=[client])
    try:
        data = f.path.read_bytes()
    except FileNotFoundError:
        raise LoreError(f"{f.path} is gone; run `aistack lore reindex`") from None
    return Opened(found=f, yaml=data)


def latest(settings: Settings, client: str, limit: int = 10) -> list[dict[str, Any]]:
    return service.latest(settings, [client], limit)


_SINCE_DAYS = re.compile(r"^(\d{1,4})d$")


def usage_since(arg: str | None, tz: ZoneInfo, *, today: date | None = None, default_days: int = 7) -> str:
    """A `since` argument as a local date: `YYYY-MM-DD` as is, `Nd` = the last N days (today included)."""
    today = today or datetime.now(tz).date()
    if not arg:
        return (today - timedelta(days=default_days - 1)).isoformat()
    m = _SINCE_DAYS.match(arg)
    if m:
        return (today - timedelta(days=max(1, int(m.group(1))) - 1)).isoformat()
    try:
        return date.fromisoformat(arg).isoformat()
    except ValueError:
        raise usage_mod.UsageError(f"{arg!r} is not a start date: use YYYY-MM-DD or a number of days like 30d") \
            from None


def usage(settings: Settings, client: str, by: str, since: str) -> tuple[list[usage_mod.Row], usage_mod.Row]:
    conn = service.connect(settings)
    try:
        rows = usage_mod.report(conn, by, [client], since, None, settings.zone)
    finally:
        conn.close()
    return rows, usage_mod.total(rows)


def _text_of(m: dict[str, Any]) -> str:
    return "\n".join(str(b.get("text") or "") for b in m.get("content") or []
                     if b.get("type") == "text" and str(b.get("text") or "").strip()).strip()


def first_exchange(doc: dict[str, Any], limit: int = 700) -> tuple[str | None, str | None]:
    """The main thread's first human prompt and the first assistant text after it, each cut to `limit` chars."""
    prompt: str | None = None
    answer: str | None = None
    for m in doc.get("messages") or []:
        if (m.get("thread") or "main") != "main":
            continue
        text = _text_of(m)
        if not text:
            continue
        if prompt is None and m.get("role") == "user":
            prompt = text
        elif prompt is not None and m.get("role") == "assistant":
            answer = text
            break
    return _cut(prompt, limit), _cut(answer, limit)


def _cut(text: str | None, limit: int) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[:limit].rstrip() + "…"


def local_time(ts: str | None, tz: ZoneInfo) -> str:
    """An archived ISO timestamp as `YYYY-MM-DD HH:MM` in `tz` ("?" when unknown)."""
    if not ts:
        return "?"
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone(tz).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return ts


def money(cost: float | None) -> str:
    return "unknown" if cost is None else f"${cost:,.4f}"


def tokens(n: int | None) -> str:
    if n is None:
        return "unknown"
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M"
    if n >= 10_000:
        return f"{n / 1000:.0f}k"
    if n >= 1000:
        return f"{n / 1000:.1f}k"
    return str(n)


# ------------------------------------------------------------------------------------------------ import runs

_RUNNING = threading.Lock()


def run_import(rt: Runtime, trigger: str, progress: Progress | None = None) -> Summary:
    """One import of everything (home folders and inbox), recorded for the digest. One at a time per process;
    a run that fails as a whole is recorded with its error rather than raised."""
    if trigger not in TRIGGERS:
        raise ValueError(f"trigger {trigger!r} is not one of {', '.join(TRIGGERS)}")
    if not _RUNNING.acquire(blocking=False):
        raise ImportBusy("an import is already running; wait for its summary")
    try:
        try:
            summary = service.import_all(rt.settings, progress=progress)
        except Exception as exc:  # bad clients file, unreadable LORE_ROOT…: the run says so instead of vanishing
            log.exception("LORE import (%s) failed", trigger)
            summary = Summary(errors=[f"import failed: {exc}"])
        record_run(rt.engine, summary, trigger)
        return summary
    finally:
        _RUNNING.release()


def record_run(engine: Engine, summary: Summary, trigger: str, at: datetime | None = None) -> int:
    values = {"at": as_utc(at) if at else utc_now(), "trigger": trigger, "ok": not summary.errors,
              "summary": orjson.dumps(summary.to_dict()).decode()}
    with transaction(engine, write=True) as conn:
        return int(conn.execute(insert(LoreImportRun).values(**values)).inserted_primary_key[0])  # type: ignore[index]


@dataclass(frozen=True)
class RecordedRun:
    at: datetime
    trigger: str
    summary: dict[str, Any]


def runs_since(engine: Engine, since: datetime) -> list[RecordedRun]:
    q = select(LoreImportRun).where(LoreImportRun.at >= since).order_by(LoreImportRun.at, LoreImportRun.id)
    with transaction(engine) as conn:
        return [RecordedRun(at=r["at"], trigger=r["trigger"], summary=orjson.loads(r["summary"]))
                for r in conn.execute(q).mappings()]


def summary_lines(s: dict[str, Any]) -> list[str]:
    """An import summary (Summary.to_dict()) as plain text lines."""
    added, updated = Counter(s.get("added") or {}), Counter(s.get("updated") or {})
    unchanged = int(s.get("unchanged") or 0) + int(s.get("skipped_units") or 0)
    lines = [f"{sum(added.values())} added, {sum(updated.values())} updated, {unchanged} unchanged "
             f"({s.get('units', 0)} sources, {float(s.get('seconds') or 0):.1f} s)"]
    lines += [f"  {c}: {added[c]} added, {updated[c]} updated" for c in sorted(set(added) | set(updated))]
    bad = s.get("bad_lines") or []
    lines.append(f"Malformed lines skipped: {len(bad)}")
    lines += [f"  {b}" for b in bad[:5]]
    if len(bad) > 5:
        lines.append(f"  … and {len(bad) - 5} more (`aistack lore import --json` lists all)")
    errors = s.get("errors") or []
    lines.append(f"Errors: {len(errors)}" if errors else "Errors: none")
    lines += [f"  {e}" for e in errors[:5]]
    if len(errors) > 5:
        lines.append(f"  … and {len(errors) - 5} more")
    return lines


# ------------------------------------------------------------------------------------------------ digest

def _iso_z(t: datetime) -> str:
    """The archive's timestamp form (`2026-03-14T09:15:05.120Z`), so string comparison orders correctly."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def adverse_since(settings: Settings, since: datetime) -> list[dict[str, Any]]:
    """Sessions (all clients: the digest goes to the owner) with adverse events that ended since `since`."""
    conn = service.connect(settings)
    try:
        rows = conn.execute("SELECT key, client, title, adverse, ended FROM sessions WHERE adverse > 0 AND ended >= ? "
                            "ORDER BY ended", (_iso_z(since),)).fetchall()
    finally:
        conn.close()
    return [dict(zip(("key", "client", "title", "adverse", "ended"), r, strict=True)) for r in rows]


def section(rt: Runtime, since: datetime) -> digest.Section | None:
    s = rt.settings
    runs = runs_since(rt.engine, since)
    has_index = index.index_path(service.lore_root(s)).exists()
    if not runs and not has_index:
        return None  # LORE not in use here
    lines: list[str] = []
    if runs:
        added: Counter[str] = Counter()
        updated: Counter[str] = Counter()
        errors = bad = 0
        for r in runs:
            added.update(r.summary.get("added") or {})
            updated.update(r.summary.get("updated") or {})
            errors += len(r.summary.get("errors") or [])
            bad += len(r.summary.get("bad_lines") or [])
        last = runs[-1].at.astimezone(s.zone).strftime("%H:%M")
        lines.append(f"Imports: {len(runs)} run(s), last at {last}" + (f", {errors} error(s)" if errors else "")
                     + (f", {bad} malformed line(s) skipped" if bad else ""))
        clients = sorted(set(added) | set(updated))
        if clients:
            lines.append("Archived: " + "; ".join(f"{c} {added[c]} new, {updated[c]} updated" for c in clients))
        else:
            lines.append("Archived: nothing new")
    else:
        lines.append(f"No import ran in this period (the daily import runs at {s.lore_import_time:%H:%M})")
    if has_index:
        conn = service.connect(s)
        try:
            rows = usage_mod.report(conn, "client", None, since.isoformat(), None, s.zone)
        finally:
            conn.close()
        if rows:
            lines.append("Usage by client:")
            lines += [f"  {r.group}: {tokens(r.total_tokens)} tokens, {money(r.cost_usd)}"
                      + (f" (+{r.unpriced_calls} unpriced call(s))" if r.unpriced_calls else "") for r in rows]
        else:
            lines.append("Usage: no model calls in this period")
        adverse = adverse_since(s, since)
        if adverse:
            lines.append(f"Adverse events: {len(adverse)} session(s)")
            lines += [f"  {a['client']}: {a['title'] or a['key']} ({a['key']}): {a['adverse']} SENTINEL block(s)"
                      for a in adverse[:10]]
        else:
            lines.append("Adverse events: none")
    return digest.Section("LORE", lines)


@digest.register("LORE", order=30)
def lore_section(rt: Runtime, since: datetime) -> digest.Section | None:
    return section(rt, since)
