"""LORE's entry points for the CLI, the bot and the scheduled job: each takes the settings and returns plain data.

Reads go through the index (fast); the YAML files stay the source of truth (`reindex` rebuilds the index from
them). Writes (import, promote) change the YAML, commit, then update the index.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from services.settings import Settings

from . import archive, index, yamlio
from .clients import Clients, load_clients
from .model import STATES, Call
from .run import Env, Progress, Summary, make_env, run_import

EXPORT_PLATFORMS = ("chatgpt", "gemini")


class LoreError(Exception):
    """A LORE request that cannot be done as asked; the message says why and what to do."""


def lore_root(settings: Settings) -> Path:
    assert settings.lore_root is not None  # set by the settings' defaults
    return Path(settings.lore_root)


def env(settings: Settings) -> Env:
    # The Gemini importer reads its session gap from the environment; .env values reach it through here.
    os.environ.setdefault("LORE_GEMINI_GAP_MINUTES", f"{settings.lore_gemini_gap_minutes:g}")
    return make_env(lore_root(settings), Path(settings.aistack_home) / "lore-redaction.key",
                    audit_dir=Path(settings.sentinel_audit_dir))


def homes(settings: Settings) -> dict[str, Path]:
    return {"claude_code": Path(settings.claude_home), "codex": Path(settings.codex_home)}


def inbox(settings: Settings) -> Path:
    """Drop ChatGPT/Gemini exports into `$LORE_ROOT/inbox/<platform>/[<client>/]`: the daily import takes them."""
    return lore_root(settings) / "inbox"


def _inbox_exports(settings: Settings) -> list[tuple[str, Path, str | None]]:
    out: list[tuple[str, Path, str | None]] = []
    for platform in EXPORT_PLATFORMS:
        base = inbox(settings) / platform
        if not base.is_dir():
            continue
        for p in sorted(base.iterdir()):
            if p.is_dir():  # a client's folder
                out += [(platform, q, p.name) for q in sorted(p.iterdir()) if not q.name.startswith(".")]
            elif not p.name.startswith("."):
                out.append((platform, p, None))
    return out


def import_all(settings: Settings, exports: Iterable[tuple[str, Path]] = (), client: str | None = None,
               platforms: Iterable[str] | None = None, progress: Progress | None = None,
               include_inbox: bool = True) -> Summary:
    """Import the platforms' home folders (all, or `platforms`), the given exports and the inbox."""
    e = env(settings)
    h = homes(settings)
    if platforms is not None:
        wanted = set(platforms)
        h = {k: v for k, v in h.items() if k in wanted}
    summary = run_import(e, h, list(exports), client=client, progress=progress)
    if include_inbox:
        for platform, path, who in _inbox_exports(settings):
            part = run_import(e, {}, [(platform, path)], client=who or client)
            summary.absorb(part)
    return summary


def clients(settings: Settings) -> Clients:
    return load_clients(lore_root(settings))


def client_names(settings: Settings) -> list[str]:
    return clients(settings).names()


def connect(settings: Settings) -> Any:
    return index.connect(lore_root(settings))


# ------------------------------------------------------------------------------------------------ sessions

@dataclass
class Found:
    key: str
    client: str
    path: Path
    doc: dict[str, Any]


def find(settings: Settings, key: str, allowed: list[str] | None = None) -> Found:
    """A session by key (or a unique prefix of its native id). `allowed` limits the clients it may come from."""
    conn = connect(settings)
    try:
        row = conn.execute("SELECT key, client, path FROM sessions WHERE key = ?", (key,)).fetchone()
        if row is None:
            rows = conn.execute("SELECT key, client, path FROM sessions WHERE key LIKE ? OR key LIKE ? LIMIT 2",
                                (f"{key}%", f"%:{key}%")).fetchall()
            if len(rows) > 1:
                raise LoreError(f"{key!r} matches more than one session; give more of the key")
            row = rows[0] if rows else None
    finally:
        conn.close()
    if row is None or (allowed is not None and row[1] not in allowed):
        raise LoreError(f"no session {key!r}" + (" for this client" if allowed is not None else "")
                        + "; `aistack lore search` finds keys")
    path = lore_root(settings) / row[1] / row[2]
    try:
        doc = yamlio.load(path.read_bytes())
    except FileNotFoundError:
        raise LoreError(f"{path} is gone; run `aistack lore reindex`") from None
    return Found(key=row[0], client=row[1], path=path, doc=doc)


def latest(settings: Settings, clients_: list[str], limit: int = 10) -> list[dict[str, Any]]:
    conn = connect(settings)
    try:
        rows = conn.execute(
            f"SELECT key, client, platform, title, started, ended, cost_usd, input, output, cache_creation, "
            f"cache_read, state FROM sessions WHERE client IN ({','.join('?' * len(clients_))}) "
            f"ORDER BY coalesce(ended, started) DESC LIMIT ?", [*clients_, limit]).fetchall()
    finally:
        conn.close()
    keys = ("key", "client", "platform", "title", "started", "ended", "cost_usd", "input_tokens", "output_tokens",
            "cache_creation_input_tokens", "cache_read_input_tokens", "state")
    return [dict(zip(keys, r, strict=True)) for r in rows]


def promote(settings: Settings, key: str, to: str, by: str) -> dict[str, Any]:
    """Move a session's knowledge state and record who and when, as one commit."""
    if to not in STATES:
        raise LoreError(f"unknown state {to!r}: use one of {', '.join(STATES)}")
    f = find(settings, key)
    k = f.doc.setdefault("knowledge", {"state": "hypothesis", "history": []})
    if k.get("state") == to:
        raise LoreError(f"{f.key} is already {to}")
    at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    k["history"] = [*(k.get("history") or []), {"state": to, "at": at, "by": by, "from": k.get("state")}]
    k["state"] = to
    data = archive.render(f.doc)
    archive.write_atomic(f.path, data)
    repo = lore_root(settings) / f.client
    archive.commit(repo, f"lore promote: {f.key} → {to} (by {by})")
    _reindex_one(settings, f.client, str(f.path.relative_to(repo)), f.doc, data)
    return k


def _reindex_one(settings: Settings, client: str, rel: str, doc: dict[str, Any], data: bytes) -> None:
    from .pricing import default_table

    prices = default_table()
    conn = connect(settings)
    try:
        with index.transaction(conn):
            costs = [prices.cost(Call.from_dict(c)) for c in doc.get("calls") or []]
            index.upsert(conn, doc, client, rel, hashlib.sha256(data).hexdigest(), costs)
    finally:
        conn.close()


def reindex(settings: Settings, progress: Progress | None = None) -> int:
    """Rebuild the index's session, usage and search tables from the YAML files. Returns the session count."""
    from .pricing import default_table

    prices = default_table()
    root = lore_root(settings)
    files: list[tuple[str, Path]] = []
    for repo in sorted(p for p in root.iterdir() if (p / ".git").exists()) if root.is_dir() else []:
        for dirpath, _dirs, names in os.walk(repo / "sessions"):
            files += [(repo.name, Path(dirpath) / n) for n in sorted(names)
                      if n.endswith(".yaml") and not n.startswith(".")]
    conn = connect(settings)
    try:
        with index.transaction(conn):
            index.clear(conn)
            for i, (client, path) in enumerate(files):
                if progress:
                    progress(i, len(files), str(path))
                data = path.read_bytes()
                doc = yamlio.load(data)
                costs = [prices.cost(Call.from_dict(c)) for c in doc.get("calls") or []]
                index.upsert(conn, doc, client, str(path.relative_to(root / client)),
                             hashlib.sha256(data).hexdigest(), costs)
    finally:
        conn.close()
    return len(files)


# ------------------------------------------------------------------------------------------------ cross-machine

EXPORT_FIELDS = ("key", "client", "platform", "title", "started", "ended", "cwd", "models", "input_tokens",
                 "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "cost_usd", "state")


def export_index(settings: Settings) -> dict[str, Any]:
    conn = connect(settings)
    try:
        rows = conn.execute("SELECT key, client, platform, title, started, ended, cwd, models, input, output, "
                            "cache_creation, cache_read, cost_usd, state FROM sessions ORDER BY key").fetchall()
    finally:
        conn.close()
    sessions = []
    for r in rows:
        d = dict(zip(EXPORT_FIELDS, r, strict=True))
        d["models"] = orjson.loads(d["models"] or "[]")
        sessions.append(d)
    return {"schema": "lore.index/v1", "machine": os.uname().nodename, "sessions": sessions}


def merge_index(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """Several machines' indexes as one: a key seen twice keeps the entry that ended last (it has seen more)."""
    merged: dict[str, dict[str, Any]] = {}
    machines: list[str] = []
    for d in docs:
        if d.get("schema") != "lore.index/v1":
            raise LoreError("not a LORE index (schema lore.index/v1); make one with `aistack lore export-index`")
        machines.append(str(d.get("machine") or "?"))
        for s in d.get("sessions") or []:
            prev = merged.get(s["key"])
            if prev is None or (s.get("ended") or "") > (prev.get("ended") or ""):
                merged[s["key"]] = {**s, "machine": d.get("machine")}
    return {"schema": "lore.index/v1", "machines": machines,
            "sessions": [merged[k] for k in sorted(merged)]}


# ------------------------------------------------------------------------------------------------ reading

def markdown(doc: dict[str, Any], *, max_chars: int | None = None) -> str:
    """A session as readable Markdown: header facts, then the main thread, subagents and alternates after."""
    u = doc.get("usage") or {}
    lines = [f"# {doc.get('title') or doc.get('key')}", "",
             f"- key: `{doc.get('key')}`",
             f"- client: {(doc.get('security') or {}).get('client')} · state: "
             f"{(doc.get('knowledge') or {}).get('state')}",
             f"- when: {doc.get('started')} → {doc.get('ended')}",
             f"- project: {(doc.get('project') or {}).get('cwd') or '–'}"
             f" ({(doc.get('project') or {}).get('git_branch') or '–'})",
             f"- models: {', '.join(doc.get('models') or []) or '–'}",
             "- tokens: " + (" / ".join(f"{k.replace('_input_tokens', '').replace('_tokens', '')} {u.get(k)}"
                                      for k in u) if any(v is not None for v in u.values()) else "unknown"),
             f"- cost: {_money(doc.get('cost_usd'), doc.get('unpriced_models'))}", ""]
    threads: dict[str, list[dict[str, Any]]] = {}
    for m in doc.get("messages") or []:
        threads.setdefault(m.get("thread") or "main", []).append(m)
    for name in sorted(threads, key=lambda t: (t != "main", t)):
        if name != "main":
            lines += [f"## {name}", ""]
        for m in threads[name]:
            lines += _message_md(m)
    text = "\n".join(lines)
    if max_chars is not None and len(text) > max_chars:
        text = text[:max_chars].rsplit("\n", 1)[0] + "\n\n… (cut; the YAML has everything)"
    return text


def _money(cost: Any, unpriced: Any) -> str:
    if cost is None:
        return f"unknown (no price for {', '.join(unpriced)})" if unpriced else "unknown"
    return f"${cost:.4f}"


def _message_md(m: dict[str, Any]) -> list[str]:
    head = f"**{m.get('role')}**" + (f" · {m.get('model')}" if m.get("model") else "") + \
        (f" · {m.get('time')}" if m.get("time") else "")
    out = [head, ""]
    for b in m.get("content") or []:
        t = b.get("type")
        if t == "text":
            out += [str(b.get("text") or ""), ""]
        elif t == "thinking":
            out += ["> *thinking:* " + " ".join(str(b.get("text") or "").split())[:500], ""]
        elif t == "tool_use":
            inp = b.get("input")
            out += [f"`{b.get('name')}` " + (inp if isinstance(inp, str) else orjson.dumps(inp).decode())[:500], ""]
        elif t == "tool_result":
            body = str(b.get("content") or "")
            out += ["```", body[:1500] + ("\n…" if len(body) > 1500 else ""), "```", ""]
        elif t == "attachment":
            out += [f"📎 {b.get('name') or b.get('ref')}", ""]
    return out
