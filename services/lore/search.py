"""Search the archive through the index: bm25 over words, trigram for code identifiers and paths, results grouped
by session with a snippet each.

Client isolation is enforced here, not by callers: `search` takes the list of clients it may look into, refuses an
empty one, and every query filters on it. The bot passes only the chat's current client.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field
from typing import Any

import orjson

from .index import is_code

_WORD_RE = re.compile(r"\w+", re.UNICODE)


class SearchError(Exception):
    """The search cannot run as asked; the message says what to change."""


@dataclass
class Filters:
    platform: str | None = None
    state: str | None = None
    since: str | None = None  # ISO date or timestamp, compared with the session's start
    until: str | None = None
    model: str | None = None


@dataclass
class Hit:
    key: str
    client: str
    platform: str
    title: str | None
    started: str | None
    state: str | None
    snippet: str
    score: float
    models: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "client": self.client, "platform": self.platform, "title": self.title,
                "started": self.started, "state": self.state, "models": self.models, "score": self.score,
                "snippet": self.snippet}


def _quote(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def plan(query: str) -> tuple[str | None, list[str]]:
    """(FTS5 words query, code substrings). Words are ANDed; "quoted phrases" stay phrases; identifiers and paths
    (`get_user`, `src/app.py`, `fooBar`) go to the trigram index as substrings."""
    words: list[str] = []
    codes: list[str] = []
    for m in re.finditer(r'"([^"]+)"|(\S+)', query):
        phrase, tok = m.group(1), m.group(2)
        if phrase:
            words.append(_quote(phrase))
            continue
        tok = tok.strip(",;()[]{}'")
        if not tok:
            continue
        if len(tok) >= 3 and is_code(tok) and re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_./:-]+", tok):
            codes.append(tok)
        else:
            words += [_quote(w) for w in _WORD_RE.findall(tok)]
    return (" AND ".join(words) if words else None), codes


def _filters_sql(f: Filters, clients: list[str]) -> tuple[str, list[Any]]:
    sql = f"s.client IN ({','.join('?' * len(clients))})"
    args: list[Any] = list(clients)
    if f.platform:
        sql += " AND s.platform = ?"
        args.append(f.platform)
    if f.state:
        sql += " AND s.state = ?"
        args.append(f.state)
    if f.since:
        sql += " AND s.started >= ?"
        args.append(f.since)
    if f.until:
        sql += " AND s.started < ?"
        args.append(f.until)
    if f.model:
        sql += " AND s.models LIKE ?"
        args.append(f'%"{f.model}%')
    return sql, args


def search(conn: sqlite3.Connection, query: str, clients: list[str], filters: Filters | None = None,
           limit: int = 10) -> list[Hit]:
    if not clients:
        raise SearchError("no client to search: name one with --client (or /client in the bot), or --all-clients")
    if not query.strip():
        raise SearchError("empty query: give one or more words, a \"phrase\", or an identifier")
    f = filters or Filters()
    words, codes = plan(query)
    where, args = _filters_sql(f, clients)
    best: dict[str, tuple[float, int | None]] = {}  # session key -> (score, text rowid for the snippet)
    want = limit * 4  # a few more sessions than asked, so that filters on the session row leave enough
    if words:
        rows = conn.execute(
            f"SELECT t.session_key, t.rowid, bm25(text, 4.0, 1.0) AS r FROM text t JOIN sessions s "
            f"ON s.key = t.session_key WHERE text MATCH ? AND {where} ORDER BY r LIMIT ?",
            [words, *args, want * 8]).fetchall()
        for key, rowid, r in rows:
            if key not in best:
                best[key] = (r, rowid)
    first = not words
    for code in codes:  # every term must match: identifiers narrow the word hits (or each other)
        matched = {k for (k,) in conn.execute(
            f"SELECT c.session_key FROM code c JOIN sessions s ON s.key = c.session_key "
            f"WHERE code MATCH ? AND {where}", [_quote(code), *args])}
        if first:
            best, first = {k: (0.0, None) for k in matched}, False
        else:
            best = {k: v for k, v in best.items() if k in matched}
    ranked = sorted(best.items(), key=lambda kv: kv[1][0])[:limit]
    hits: list[Hit] = []
    for key, (score, rowid) in ranked:
        s = conn.execute("SELECT client, platform, title, started, state, models FROM sessions WHERE key = ?",
                         (key,)).fetchone()
        if s is None or s[0] not in clients:  # belt and braces: never hand out another client's session
            continue
        snippet = _snippet(conn, words, codes, key, rowid)
        hits.append(Hit(key=key, client=s[0], platform=s[1], title=s[2], started=s[3], state=s[4],
                        snippet=snippet, score=round(-score, 3), models=orjson.loads(s[5] or "[]")))
    return hits


def _snippet(conn: sqlite3.Connection, words: str | None, codes: list[str], key: str, rowid: int | None) -> str:
    if words and rowid is not None:
        row = conn.execute("SELECT snippet(text, 1, '«', '»', '…', 16) FROM text WHERE text MATCH ? AND rowid = ?",
                           (words, rowid)).fetchone()
        if row and row[0]:
            return " ".join(str(row[0]).split())
    if codes:  # the first chunk that holds the identifier, cut around it
        rids = [r for (r,) in conn.execute("SELECT rid FROM fts_rows WHERE session_key = ? AND tbl = 'text'",
                                           (key,))]
        for rid in rids:
            body = conn.execute("SELECT body FROM text WHERE rowid = ?", (rid,)).fetchone()
            if body and codes[0] in body[0]:
                i = body[0].index(codes[0])
                cut = body[0][max(0, i - 60): i + len(codes[0]) + 60]
                return "…" + " ".join(cut.replace(codes[0], f"«{codes[0]}»").split()) + "…"
    return ""
