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

from . import index
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


def _filters_sql(f: Filters, clients: list[str], col: str = "s.") -> tuple[str, list[Any]]:
    """The WHERE terms for the session filters; `col` prefixes each column (`+s.` keeps SQLite off an index)."""
    sql = f"{col}client IN ({','.join('?' * len(clients))})"
    args: list[Any] = list(clients)
    if f.platform:
        sql += f" AND {col}platform = ?"
        args.append(f.platform)
    if f.state:
        sql += f" AND {col}state = ?"
        args.append(f.state)
    if f.since:
        sql += f" AND {col}started >= ?"
        args.append(f.since)
    if f.until:
        sql += f" AND {col}started < ?"
        args.append(f.until)
    if f.model:
        sql += f" AND {col}models LIKE ?"
        args.append(f'%"{f.model}%')
    return sql, args


RANKED = 2000  # matching chunks ranked per client: all of them, or the newest RANKED for very common words


def _session_filter(conn: sqlite3.Connection, keys: list[str], f: Filters, clients: list[str]) -> set[str]:
    if not keys:
        return set()
    # `+s.` keeps the planner on the primary key: the client index would scan every session of the client
    where, args = _filters_sql(f, clients, col="+s.")
    out: set[str] = set()
    for i in range(0, len(keys), 500):
        part = keys[i:i + 500]
        out |= {k for (k,) in conn.execute(
            f"SELECT s.key FROM sessions s WHERE s.key IN ({','.join('?' * len(part))}) AND {where}",
            [*part, *args])}
    return out


def _owners(conn: sqlite3.Connection, tbl: str, rids: list[int]) -> dict[int, str]:
    out: dict[int, str] = {}
    for i in range(0, len(rids), 500):
        part = rids[i:i + 500]
        out.update(conn.execute(f"SELECT rid, session_key FROM fts_rows WHERE tbl = ? AND rid IN "
                                f"({','.join('?' * len(part))})", [tbl, *part]).fetchall())
    return out


def search(conn: sqlite3.Connection, query: str, clients: list[str], filters: Filters | None = None,
           limit: int = 10) -> list[Hit]:
    """The best sessions for `query` among `clients` only. Words are ranked with bm25 over every matching chunk,
    or over the newest RANKED matching chunks of a client when a word is very common (which keeps such queries
    in milliseconds and favours recent work); identifiers narrow the result to sessions that contain them."""
    if not clients:
        raise SearchError("no client to search: name one with --client (or /client in the bot), or --all-clients")
    if not query.strip():
        raise SearchError("empty query: give one or more words, a \"phrase\", or an identifier")
    f = filters or Filters()
    words, codes = plan(query)
    have = index.fts_clients(conn)
    scored: list[tuple[float, str, str, int | None]] = []  # (bm25, session key, client, text rowid)
    for client in clients:
        if client not in have:
            continue
        tt, ct = index.text_table(client), index.code_table(client)
        best: dict[str, tuple[float, int | None]] = {}
        if words:
            rows = conn.execute(f"SELECT rowid, bm25({tt}, 4.0, 1.0) FROM {tt} WHERE {tt} MATCH ? "
                                f"ORDER BY rowid DESC LIMIT ?", (words, RANKED)).fetchall()
            rows.sort(key=lambda r: r[1])
            want = max(limit * 4, 40)  # best chunks first: map only as many to sessions as the answer needs
            for i in range(0, len(rows), 200):
                batch = rows[i:i + 200]
                owners = _owners(conn, tt, [rid for rid, _ in batch])
                for rid, score in batch:
                    key = owners.get(rid)
                    if key is not None and key not in best:
                        best[key] = (score, rid)
                if len(best) >= want and not codes:
                    break
        first = not words
        for code in codes:  # every term must match: identifiers narrow the word hits (or each other)
            rids = [r for (r,) in conn.execute(f"SELECT rowid FROM {ct} WHERE {ct} MATCH ? ORDER BY rowid DESC LIMIT ?",
                                               (_quote(code), RANKED))]
            matched = set(_owners(conn, ct, rids).values())
            if first:
                best, first = {k: (0.0, None) for k in matched}, False
            else:
                best = {k: v for k, v in best.items() if k in matched}
        scored += [(sc, key, client, rid) for key, (sc, rid) in best.items()]
    scored.sort(key=lambda x: x[0])
    allowed = _session_filter(conn, [k for _, k, _, _ in scored[: max(limit * 20, 200)]], f, clients)
    hits: list[Hit] = []
    for score, key, client, rid in scored:
        if key not in allowed:
            continue
        s = conn.execute("SELECT client, platform, title, started, state, models FROM sessions WHERE key = ?",
                         (key,)).fetchone()
        if s is None or s[0] != client:  # belt and braces: never hand out another client's session
            continue
        hits.append(Hit(key=key, client=s[0], platform=s[1], title=s[2], started=s[3], state=s[4],
                        snippet=_snippet(conn, words, codes, key, client, rid), score=round(-score, 3),
                        models=orjson.loads(s[5] or "[]")))
        if len(hits) >= limit:
            break
    return hits


def _snippet(conn: sqlite3.Connection, words: str | None, codes: list[str], key: str, client: str,
             rowid: int | None) -> str:
    tt = index.text_table(client)
    if words and rowid is not None:
        row = conn.execute(f"SELECT snippet({tt}, 1, '«', '»', '…', 16) FROM {tt} WHERE {tt} MATCH ? AND rowid = ?",
                           (words, rowid)).fetchone()
        if row and row[0]:
            return " ".join(str(row[0]).split())
    if codes:  # the first chunk that holds the identifier, cut around it
        for (rid,) in conn.execute("SELECT rid FROM fts_rows WHERE session_key = ? AND +tbl = ?", (key, tt)):
            body = conn.execute(f"SELECT body FROM {tt} WHERE rowid = ?", (rid,)).fetchone()
            if body and codes[0] in body[0]:
                i = body[0].index(codes[0])
                cut = body[0][max(0, i - 60): i + len(codes[0]) + 60]
                return "…" + " ".join(cut.replace(codes[0], f"«{codes[0]}»").split()) + "…"
    return ""
