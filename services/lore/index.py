"""LORE's index: one SQLite file beside the client repositories (`$LORE_ROOT/.lore/index.sqlite`), never committed.
It is a cache of the YAML archive (`aistack lore reindex` rebuilds it from the files) plus the import state.

    sessions   one row per archived session: key, client, path, title, times, cwd, models, state, totals
    calls      one row per billed model call: what `lore usage` adds up (time in epoch seconds)
    text       FTS5 (unicode61, bm25): a session's text in chunks of about CHUNK characters
    code       FTS5 (trigram): identifiers and paths, for substring search in code
    sources    import state per source file: size, mtime, bytes read so far, hash of the first block

SQLite's FTS5 lives in the stdlib `sqlite3`; PostgreSQL users keep this file local too (it is a per-machine cache;
`aistack lore export-index` is how machines share what they hold).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

CHUNK = 8192  # characters per FTS row: small enough for fast snippets, large enough to keep rows few
SCHEMA_VERSION = 1

_DDL = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT);
CREATE TABLE IF NOT EXISTS sessions (
    key TEXT PRIMARY KEY, client TEXT NOT NULL, platform TEXT NOT NULL, path TEXT NOT NULL,
    title TEXT, started TEXT, ended TEXT, cwd TEXT, git_branch TEXT, models TEXT, state TEXT,
    messages INTEGER, input INTEGER, output INTEGER, cache_creation INTEGER, cache_read INTEGER,
    cost_usd REAL, unpriced TEXT, blocked INTEGER, adverse INTEGER, sha TEXT);
CREATE INDEX IF NOT EXISTS sessions_client ON sessions (client, started);
CREATE TABLE IF NOT EXISTS calls (
    session_key TEXT NOT NULL, client TEXT NOT NULL, platform TEXT NOT NULL, project TEXT, model TEXT,
    ts INTEGER, input INTEGER, output INTEGER, cache_creation INTEGER, cache_read INTEGER, cost_usd REAL);
CREATE INDEX IF NOT EXISTS calls_session ON calls (session_key);
CREATE INDEX IF NOT EXISTS calls_ts ON calls (ts);
CREATE VIRTUAL TABLE IF NOT EXISTS text USING fts5(
    title, body, session_key UNINDEXED, client UNINDEXED, tokenize = 'unicode61 remove_diacritics 2');
CREATE VIRTUAL TABLE IF NOT EXISTS code USING fts5(
    body, session_key UNINDEXED, client UNINDEXED, tokenize = 'trigram');
CREATE TABLE IF NOT EXISTS fts_rows (session_key TEXT NOT NULL, tbl TEXT NOT NULL, rid INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS fts_rows_key ON fts_rows (session_key);
CREATE TABLE IF NOT EXISTS sources (
    path TEXT PRIMARY KEY, platform TEXT, size INTEGER, mtime_ns INTEGER, offset INTEGER, head TEXT,
    keys TEXT);
"""


def index_path(lore_root: Path) -> Path:
    return lore_root / ".lore" / "index.sqlite"


def connect(lore_root: Path) -> sqlite3.Connection:
    path = index_path(lore_root)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")  # a cache: losing the last transaction on power loss is fine
    conn.execute("PRAGMA busy_timeout=10000")
    conn.executescript(_DDL)
    conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def epoch(ts: str | None) -> int | None:
    if not ts:
        return None
    try:
        return int(datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return None


def _chunks(doc: dict[str, Any]) -> list[str]:
    out: list[str] = []
    buf: list[str] = []
    size = 0
    for m in doc.get("messages") or []:
        t = _message_text(m)
        if not t:
            continue
        if size + len(t) > CHUNK and buf:
            out.append("\n".join(buf))
            buf, size = [], 0
        buf.append(t)
        size += len(t)
    if buf:
        out.append("\n".join(buf))
    return out


def _message_text(m: dict[str, Any]) -> str:
    parts: list[str] = []
    for b in m.get("content") or []:
        t = b.get("type")
        if t in ("text", "thinking"):
            parts.append(str(b.get("text") or ""))
        elif t == "tool_use":
            inp = b.get("input")
            parts.append(f"{b.get('name', '')} {inp if isinstance(inp, str) else orjson.dumps(inp).decode()}")
        elif t == "tool_result":
            parts.append(str(b.get("content") or ""))
        elif t == "attachment":
            parts.append(str(b.get("name") or b.get("ref") or ""))
    return "\n".join(p for p in parts if p)


_WORDISH_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./:-]{2,}")


def is_code(tok: str) -> bool:
    return ("_" in tok or "/" in tok or "." in tok or "::" in tok or
            (not tok.islower() and not tok.isupper() and not tok.istitle() and not tok.isdigit()))


def code_tokens(chunks: Iterable[str]) -> str:
    """Identifiers and paths (snake_case, camelCase, dotted and slashed names), once each. One simple character
    class finds candidates (fast in the regex engine), a set removes repeats, and only unique ones are tested."""
    seen: set[str] = set()
    for c in chunks:
        seen.update(_WORDISH_RE.findall(c))
    return " ".join(sorted(t.strip(".:-") for t in seen if is_code(t.strip(".:-")) and len(t.strip(".:-")) >= 3))


def upsert(conn: sqlite3.Connection, doc: dict[str, Any], client: str, path: str, sha: str,
           call_costs: list[float | None]) -> None:
    """Replace everything the index holds for this session. Call inside a transaction."""
    key = doc["key"]
    delete(conn, key)
    u = doc.get("usage") or {}
    sec = doc.get("security") or {}
    conn.execute(
        "INSERT INTO sessions VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (key, client, doc["platform"], path, doc.get("title"), doc.get("started"), doc.get("ended"),
         (doc.get("project") or {}).get("cwd"), (doc.get("project") or {}).get("git_branch"),
         orjson.dumps(doc.get("models") or []).decode(), (doc.get("knowledge") or {}).get("state"),
         len(doc.get("messages") or []), u.get("input_tokens"), u.get("output_tokens"),
         u.get("cache_creation_input_tokens"), u.get("cache_read_input_tokens"), doc.get("cost_usd"),
         orjson.dumps(doc.get("unpriced_models") or []).decode(), sec.get("tool_calls_blocked") or 0,
         len(sec.get("adverse_events") or []), sha))
    project = (doc.get("project") or {}).get("cwd")
    conn.executemany(
        "INSERT INTO calls VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        [(key, client, doc["platform"], project, c.get("model"), epoch(c.get("time")), c.get("input_tokens"),
          c.get("output_tokens"), c.get("cache_creation_input_tokens"), c.get("cache_read_input_tokens"), cost)
         for c, cost in zip(doc.get("calls") or [], call_costs, strict=True)])
    chunks = _chunks(doc)
    title = doc.get("title") or ""
    rows = []
    for i, c in enumerate(chunks or [""]):
        cur = conn.execute("INSERT INTO text (title, body, session_key, client) VALUES (?,?,?,?)",
                           (title if i == 0 else "", c, key, client))
        rows.append((key, "text", cur.lastrowid))
    codes = code_tokens(chunks)
    if codes:
        cur = conn.execute("INSERT INTO code (body, session_key, client) VALUES (?,?,?)", (codes, key, client))
        rows.append((key, "code", cur.lastrowid))
    conn.executemany("INSERT INTO fts_rows VALUES (?,?,?)", rows)


def delete(conn: sqlite3.Connection, key: str) -> None:
    conn.execute("DELETE FROM sessions WHERE key = ?", (key,))
    conn.execute("DELETE FROM calls WHERE session_key = ?", (key,))
    # FTS5 cannot index an UNINDEXED column, so fts_rows remembers which rows belong to a session.
    for tbl in ("text", "code"):
        conn.execute(f"DELETE FROM {tbl} WHERE rowid IN (SELECT rid FROM fts_rows WHERE session_key = ? AND tbl = ?)",
                     (key, tbl))
    conn.execute("DELETE FROM fts_rows WHERE session_key = ?", (key,))


def located(conn: sqlite3.Connection, key: str) -> tuple[str, str, str | None] | None:
    """(client, path, sha) of an archived session, if the index knows it."""
    row = conn.execute("SELECT client, path, sha FROM sessions WHERE key = ?", (key,)).fetchone()
    return (row[0], row[1], row[2]) if row else None


def clear(conn: sqlite3.Connection) -> None:
    for t in ("sessions", "calls", "text", "code", "fts_rows"):
        conn.execute(f"DELETE FROM {t}")
