"""One import run: discover every source, read what is new, redact, write the YAML, index it, commit per client.

Re-running over unchanged sources is cheap (a stat per file, compared with the index's `sources` table) and
writes nothing. Append-only transcripts are read from the byte offset where the last run stopped. A source file
that disappeared (Claude Code deletes transcripts after 30 days by default) changes nothing in the archive. The
import state is recorded only after a session's file is written, so a run killed at any point is finished by the
next one: it re-reads from the last recorded offset and merges by message id, which writes the same bytes again.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from . import archive, index
from .clients import Clients, load_clients
from .importers import Importer, ImportFailed, Parsed, Report, Unit, registry
from .model import Call, Session
from .pricing import PriceTable, default_table
from .redact import Redactor, load_key

HEAD = 4096  # bytes hashed to recognise a file that was replaced rather than appended to

Progress = Callable[[int, int, str], None]  # (units done, units total, what)


@dataclass
class Summary:
    added: Counter[str] = field(default_factory=Counter)  # per client
    updated: Counter[str] = field(default_factory=Counter)
    unchanged: int = 0
    skipped_units: int = 0  # unchanged sources not even opened
    units: int = 0
    bytes_read: int = 0
    bad_lines: list[str] = field(default_factory=list)
    replaced_utf8: int = 0
    errors: list[str] = field(default_factory=list)
    commits: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"added": dict(self.added), "updated": dict(self.updated), "unchanged": self.unchanged,
                "skipped_units": self.skipped_units, "units": self.units, "bytes_read": self.bytes_read,
                "bad_lines": self.bad_lines, "replaced_utf8": self.replaced_utf8, "errors": self.errors,
                "commits": self.commits, "seconds": round(self.seconds, 3)}


@dataclass
class Env:
    """Everything an import run needs, built once."""

    lore_root: Path
    clients: Clients
    redactor: Redactor
    prices: PriceTable
    audit_dir: Path | None
    importers: dict[str, Importer]


def make_env(lore_root: Path, key_path: Path, audit_dir: Path | None = None,
             prices: PriceTable | None = None) -> Env:
    return Env(lore_root=lore_root, clients=load_clients(lore_root), redactor=Redactor(load_key(key_path)),
               prices=prices or default_table(), audit_dir=audit_dir, importers=registry())


# ------------------------------------------------------------------------------------------------ SENTINEL

def sentinel_blocks(audit_dir: Path | None) -> dict[str, list[dict[str, Any]]]:
    """SENTINEL's block events by Claude Code session id, from the audit log (one pass per run)."""
    out: dict[str, list[dict[str, Any]]] = {}
    if audit_dir is None or not audit_dir.is_dir():
        return out
    for f in sorted(audit_dir.glob("*.jsonl")):
        try:
            data = f.read_bytes()
        except OSError:
            continue
        if b'"block"' not in data:
            continue
        for line in data.splitlines():
            if b'"block"' not in line:
                continue
            try:
                e = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if e.get("decision") == "block" and e.get("session_id"):
                out.setdefault(str(e["session_id"]), []).append(
                    {"ts": e.get("ts"), "rule_id": e.get("rule_id"), "tool_use_id": e.get("tool_use_id")})
    return out


# ------------------------------------------------------------------------------------------------ state

def _head(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read(HEAD)).hexdigest()


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def _unchanged(conn: Any, unit: Unit) -> bool:
    for p in unit.paths:
        st = _stat(p)
        row = conn.execute("SELECT size, mtime_ns, offset FROM sources WHERE path = ?", (str(p),)).fetchone()
        if st is None or row is None or (row[0], row[1]) != st or row[2] != st[0]:
            return False
    return True


def _offsets(conn: Any, unit: Unit) -> dict[str, int]:
    """Where the last run stopped in each file, unless the file was replaced or shrank (then from the start)."""
    out: dict[str, int] = {}
    for p in unit.paths:
        row = conn.execute("SELECT offset, head FROM sources WHERE path = ?", (str(p),)).fetchone()
        st = _stat(p)
        if row and st and 0 < row[0] <= st[0] and row[1] == _head(p):
            out[str(p)] = int(row[0])
    return out


def _record(conn: Any, unit: Unit, parsed: Parsed, keys: list[str]) -> None:
    for p in unit.paths:
        st = _stat(p)
        if st is None:
            continue
        offset = parsed.offsets.get(str(p), st[0])
        conn.execute("INSERT OR REPLACE INTO sources VALUES (?,?,?,?,?,?,?)",
                     (str(p), unit.platform, st[0], st[1], offset, _head(p), orjson.dumps(keys).decode()))


# ------------------------------------------------------------------------------------------------ one session

def _load_old(env: Env, where: tuple[str, str, str | None] | None) -> dict[str, Any] | None:
    if where is None:
        return None
    path = env.lore_root / where[0] / where[1]
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return None
    from . import yamlio

    doc = yamlio.load(text)
    return doc if isinstance(doc, dict) else None


def archive_session(env: Env, conn: Any, s: Session, imp: Importer, explicit_client: str | None,
                    blocks: dict[str, list[dict[str, Any]]], summary: Summary, touched: set[str]) -> None:
    where = index.located(conn, s.key)
    old = _load_old(env, where)
    # An archived session stays with its client and at its path even if the rules change later.
    client_name = where[0] if where and old is not None else env.clients.resolve(s.cwd, s.git_remote,
                                                                                explicit_client)
    rel = where[1] if where and old is not None else archive.session_path(s)
    ctx = archive.Context(client=env.clients.get(client_name), redactor=env.redactor, prices=env.prices,
                          blocked_by_sentinel=blocks.get(s.native_id, []) if s.platform == "claude_code" else [],
                          importer_version=imp.version)
    doc = archive.build(s, ctx, old)
    data = archive.render(doc)
    repo = env.lore_root / client_name
    archive.ensure_repo(repo)
    changed = archive.write_atomic(repo / rel, data)
    touched.add(client_name)
    sha = hashlib.sha256(data).hexdigest()
    if changed or where is None or where[2] != sha:
        costs = [env.prices.cost(Call.from_dict(c)) for c in doc.get("calls") or []]
        index.upsert(conn, doc, client_name, rel, sha, costs)
    if not changed:
        summary.unchanged += 1
    elif old is None:
        summary.added[client_name] += 1
    else:
        summary.updated[client_name] += 1


# ------------------------------------------------------------------------------------------------ the run

def discover(env: Env, homes: dict[str, Path], exports: list[tuple[str, Path]],
             summary: Summary) -> list[tuple[Importer, Unit, bool]]:
    """(importer, unit, is an export). An export that cannot be found is an error; the others still import."""
    units: list[tuple[Importer, Unit, bool]] = []
    for platform, root in homes.items():
        imp = env.importers[platform]
        units += [(imp, u, False) for u in imp.discover(root)]
    for platform, path in exports:
        imp = env.importers[platform]
        try:
            found = imp.discover(path)
        except ImportFailed as exc:
            summary.errors.append(str(exc))
            continue
        if not found:
            summary.errors.append(f"{path}: no {platform} export found there; point at the export file or zip")
        units += [(imp, u, True) for u in found]
    return units


def run_import(env: Env, homes: dict[str, Path], exports: list[tuple[str, Path]] | None = None,
               client: str | None = None, progress: Progress | None = None) -> Summary:
    """Import `homes` (platform -> home folder) and `exports` ((platform, file)); `client` names the client of the
    exports, which carry no working directory for the rules to match."""
    t0 = time.monotonic()
    summary = Summary()
    conn = index.connect(env.lore_root)
    for name in env.clients.names():
        if (env.lore_root / name / ".git").exists():
            archive.clean_temp(env.lore_root / name)
    units = discover(env, homes, list(exports or []), summary)
    blocks = sentinel_blocks(env.audit_dir)
    touched: set[str] = set()
    summary.units = len(units)
    for i, (imp, unit, is_export) in enumerate(units):
        if progress:
            progress(i, len(units), str(unit.paths[0]))
        if _unchanged(conn, unit):
            summary.skipped_units += 1
            continue
        report = Report()
        offsets = _offsets(conn, unit) if imp.incremental else {}
        if offsets and unit.native_id:
            where = index.located(conn, f"{unit.platform}:{unit.native_id}")
            if where is None or not (env.lore_root / where[0] / where[1]).exists():
                offsets = {}  # the archived copy is gone: read the whole source again
        try:
            parsed = imp.parse(unit, report, offsets)
        except ImportFailed as exc:
            summary.errors.append(str(exc))
            continue
        except OSError as exc:
            summary.errors.append(f"{unit.paths[0]}: cannot read ({exc.strerror or exc})")
            continue
        summary.bad_lines += report.bad_lines
        summary.replaced_utf8 += report.replaced_utf8
        summary.errors += report.errors
        summary.bytes_read += sum(max(0, parsed.offsets.get(str(p), 0) - offsets.get(str(p), 0))
                                  for p in unit.paths)
        with index.transaction(conn):
            ok = True
            for s in parsed.sessions:
                try:
                    archive_session(env, conn, s, imp, client if is_export else None, blocks, summary, touched)
                except archive.SecretLeft as exc:
                    summary.errors.append(str(exc))
                    ok = False
            if ok:
                _record(conn, unit, parsed, [s.key for s in parsed.sessions])
    for name in sorted(touched | {n for n in env.clients.names() if (env.lore_root / n / ".git").exists()}):
        repo = env.lore_root / name
        if not (repo / ".git").exists():
            continue
        msg = f"lore import: {summary.added[name]} added, {summary.updated[name]} updated"
        sha = archive.commit(repo, msg)
        if sha:
            summary.commits[name] = sha
    if progress:
        progress(len(units), len(units), "done")
    conn.close()
    summary.seconds = time.monotonic() - t0
    return summary
