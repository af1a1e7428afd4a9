"""LORE's index: one SQLite file beside the client repositories (`$LORE_ROOT/.lore/index.sqlite`), never committed.
It is a cache of the YAML archive (`aistack lore reindex` rebuilds it from the files) plus the import state.

    sessions   one row per archived session: key, client, path, title, times, cwd, models, state, totals
    calls      one row per billed model call: what `lore usage` adds up (time in epoch seconds)
    lore_text_<client>   FTS5 (unicode61, bm25): the client's sessions' text in chunks of about CHUNK characters
    lore_code_<client>   FTS5 (trigram): identifiers and paths, for substring search in code
    fts_rows   which FTS rows belong to which session

Search tables are per client: a query reads only the tables of the clients it names, so isolation holds by
construction and no row of another client is even read (nor filtered, which also keeps common words fast).
    sources    import state per source file: size, mtime, bytes read so far, hash of the first block

SQLite's FTS5 lives in the stdlib `sqlite3`; PostgreSQL users keep this file local too (it is a per-machine cache;
`aistack lore export-index` is how machines share what they hold).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

CHUNK = 8192  # characters per FTS row: small enough for fast snippets, large enough to keep rows few
SCHEMA_VERSION = 2

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
CREATE TABLE IF NOT EXISTS fts_rows (session_key TEXT NOT NULL, tbl TEXT NOT NULL, rid INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS fts_rows_key ON fts_rows (session_key);
CREATE INDEX IF NOT EXISTS fts_rows_rid ON fts_rows (tbl, rid);
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
    row = conn.execute("SELECT v FROM meta WHERE k = 'schema'").fetchone()
    if row is not None and row[0] != str(SCHEMA_VERSION):
        _drop_all(conn)  # a cache of an older shape: rebuilt by the next import, which re-reads every source
        conn.executescript(_DDL)
    conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
    return conn


def _drop_all(conn: sqlite3.Connection) -> None:
    virtual = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND "
                                          "sql LIKE 'CREATE VIRTUAL%'")]
    for name in virtual:  # their shadow tables go with them
        conn.execute(f'DROP TABLE IF EXISTS "{name}"')
    for name in ("sessions", "calls", "fts_rows", "sources", "meta"):
        conn.execute(f"DROP TABLE IF EXISTS {name}")


def text_table(client: str) -> str:
    return f'"lore_text_{client}"'  # client names are checked folder names: no quotes can occur


def code_table(client: str) -> str:
    return f'"lore_code_{client}"'


def ensure_fts(conn: sqlite3.Connection, client: str) -> None:
    conn.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS {text_table(client)} USING fts5(title, body, "
                 "tokenize = 'unicode61 remove_diacritics 2')")
    conn.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS {code_table(client)} USING fts5(body, tokenize = 'trigram')")


def fts_clients(conn: sqlite3.Connection) -> set[str]:
    return {r[0].removeprefix("lore_text_") for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'lore_text_%' AND sql LIKE 'CREATE "
        "VIRTUAL%'")}


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


@dataclass
class Rows:
    """Everything the index holds for one session, computed apart from the connection (in an import worker)."""

    key: str
    session: tuple[Any, ...]
    calls: list[tuple[Any, ...]]
    chunks: list[str]
    title: str
    client: str
    codes: str


def rows_for(doc: dict[str, Any], client: str, path: str, sha: str, call_costs: list[float | None]) -> Rows:
    key = doc["key"]
    u = doc.get("usage") or {}
    sec = doc.get("security") or {}
    project = (doc.get("project") or {}).get("cwd")
    session = (key, client, doc["platform"], path, doc.get("title"), doc.get("started"), doc.get("ended"),
               project, (doc.get("project") or {}).get("git_branch"),
               orjson.dumps(doc.get("models") or []).decode(), (doc.get("knowledge") or {}).get("state"),
               len(doc.get("messages") or []), u.get("input_tokens"), u.get("output_tokens"),
               u.get("cache_creation_input_tokens"), u.get("cache_read_input_tokens"), doc.get("cost_usd"),
               orjson.dumps(doc.get("unpriced_models") or []).decode(), sec.get("tool_calls_blocked") or 0,
               len(sec.get("adverse_events") or []), sha)
    calls = [(key, client, doc["platform"], project, c.get("model"), epoch(c.get("time")), c.get("input_tokens"),
              c.get("output_tokens"), c.get("cache_creation_input_tokens"), c.get("cache_read_input_tokens"), cost)
             for c, cost in zip(doc.get("calls") or [], call_costs, strict=True)]
    chunks = _chunks(doc)
    return Rows(key=key, session=session, calls=calls, chunks=chunks, title=doc.get("title") or "", client=client,
                codes=code_tokens(chunks))


def write(conn: sqlite3.Connection, r: Rows, fresh: bool = False) -> None:
    """Replace what the index holds for the session. Call inside a transaction. `fresh`: known to be absent."""
    if not fresh:
        delete(conn, r.key)
    conn.execute("INSERT INTO sessions VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", r.session)
    conn.executemany("INSERT INTO calls VALUES (?,?,?,?,?,?,?,?,?,?,?)", r.calls)
    ensure_fts(conn, r.client)
    tt, ct = text_table(r.client), code_table(r.client)
    fts = []
    for i, c in enumerate(r.chunks or [""]):
        cur = conn.execute(f"INSERT INTO {tt} (title, body) VALUES (?,?)", (r.title if i == 0 else "", c))
        fts.append((r.key, tt, cur.lastrowid))
    if r.codes:
        cur = conn.execute(f"INSERT INTO {ct} (body) VALUES (?)", (r.codes,))
        fts.append((r.key, ct, cur.lastrowid))
    conn.executemany("INSERT INTO fts_rows VALUES (?,?,?)", fts)


def upsert(conn: sqlite3.Connection, doc: dict[str, Any], client: str, path: str, sha: str,
           call_costs: list[float | None]) -> None:
    """Replace everything the index holds for this session. Call inside a transaction."""
    write(conn, rows_for(doc, client, path, sha, call_costs))


def reader(lore_root: Path) -> sqlite3.Connection:
    """A read-only connection (import workers look up where sessions are archived)."""
    conn = sqlite3.connect(f"file:{index_path(lore_root)}?mode=ro", uri=True, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


def delete(conn: sqlite3.Connection, key: str) -> None:
    conn.execute("DELETE FROM sessions WHERE key = ?", (key,))
    conn.execute("DELETE FROM calls WHERE session_key = ?", (key,))
    # fts_rows remembers which FTS rows (in which client's tables) belong to the session.
    for tbl, rid in conn.execute("SELECT tbl, rid FROM fts_rows WHERE session_key = ?", (key,)).fetchall():
        conn.execute(f"DELETE FROM {tbl} WHERE rowid = ?", (rid,))
    conn.execute("DELETE FROM fts_rows WHERE session_key = ?", (key,))


def located(conn: sqlite3.Connection, key: str) -> tuple[str, str, str | None] | None:
    """(client, path, sha) of an archived session, if the index knows it."""
    row = conn.execute("SELECT client, path, sha FROM sessions WHERE key = ?", (key,)).fetchone()
    return (row[0], row[1], row[2]) if row else None


def clear(conn: sqlite3.Connection) -> None:
    for t in ("sessions", "calls", "fts_rows"):
        conn.execute(f"DELETE FROM {t}")
    for client in fts_clients(conn):
        conn.execute(f"DROP TABLE IF EXISTS {text_table(client)}")
        conn.execute(f"DROP TABLE IF EXISTS {code_table(client)}")
