"""One import run: discover every source, read what is new, redact, write the YAML, index it, commit per client.

Re-running over unchanged sources is cheap (a stat per file, compared with the index's `sources` table) and
writes nothing. Append-only transcripts are read from the byte offset where the last run stopped. A source file
that disappeared (Claude Code deletes transcripts after 30 days by default) changes nothing in the archive. The
import state is recorded only after a session's file is written, so a run killed at any point is finished by the
next one: it re-reads from the last recorded offset and merges by message id, which writes the same bytes again.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from . import archive, index
from .clients import Clients, load_clients
from .importers import Importer, ImportFailed, Report, Unit, registry
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

    def absorb(self, part: Summary) -> None:
        """Add another run's counts to this one (the inbox exports run after the home folders)."""
        self.added.update(part.added)
        self.updated.update(part.updated)
        self.unchanged += part.unchanged
        self.skipped_units += part.skipped_units
        self.units += part.units
        self.bytes_read += part.bytes_read
        self.bad_lines += part.bad_lines
        self.replaced_utf8 += part.replaced_utf8
        self.errors += part.errors
        self.commits.update(part.commits)

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


def _record(conn: Any, unit: Unit, offsets: dict[str, int], keys: list[str]) -> None:
    for p in unit.paths:
        st = _stat(p)
        if st is None:
            continue
        offset = offsets.get(str(p), st[0])
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


@dataclass
class Prepared:
    """One session, written to its file by a worker; the index rows are left for the main process to store."""

    key: str
    client: str
    changed: bool
    new: bool
    rows: index.Rows | None  # None: the index already holds exactly this


def prepare_session(env: Env, reader: Any, s: Session, imp: Importer, explicit_client: str | None,
                    blocks: dict[str, list[dict[str, Any]]]) -> Prepared:
    where = index.located(reader, s.key) if reader is not None else None
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
    sha = hashlib.sha256(data).hexdigest()
    rows = None
    if changed or where is None or where[2] != sha:
        rows = index.rows_for(doc, client_name, rel, sha, [env.prices.cost(Call.from_dict(c))
                                                           for c in doc.get("calls") or []])
    return Prepared(key=s.key, client=client_name, changed=changed, new=old is None, rows=rows)


@dataclass
class UnitResult:
    prepared: list[Prepared] = field(default_factory=list)
    report: Report = field(default_factory=Report)
    offsets: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    complete: bool = True  # every session of the unit was written: its read position may be recorded


def process_unit(env: Env, imp: Importer, unit: Unit, offsets: dict[str, int], explicit_client: str | None,
                 blocks: dict[str, list[dict[str, Any]]]) -> UnitResult:
    """Parse one unit and write its sessions' files (runs in a worker process when the run has many units)."""
    res = UnitResult()
    try:
        parsed = imp.parse(unit, res.report, offsets)
    except ImportFailed as exc:
        res.errors.append(str(exc))
        res.complete = False
        return res
    except OSError as exc:
        res.errors.append(f"{unit.paths[0]}: cannot read ({exc.strerror or exc})")
        res.complete = False
        return res
    res.offsets = parsed.offsets
    reader = _reader(env)
    for s in parsed.sessions:
        try:
            res.prepared.append(prepare_session(env, reader, s, imp, explicit_client, blocks))
        except archive.SecretLeft as exc:
            res.errors.append(str(exc))
            res.complete = False
    return res


_READERS: dict[tuple[int, str], Any] = {}


def _reader(env: Env) -> Any:
    key = (os.getpid(), str(env.lore_root))  # a connection must never cross a fork
    if key not in _READERS:
        try:
            _READERS[key] = index.reader(env.lore_root)
        except Exception:  # no index yet: nothing is archived
            return None
    return _READERS[key]


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


Task = tuple[Importer, Unit, dict[str, int], "str | None"]
_POOL_STATE: tuple[Env, dict[str, list[dict[str, Any]]]] | None = None  # inherited by forked workers


def _pool_work(task: Task) -> UnitResult:
    assert _POOL_STATE is not None
    env, blocks = _POOL_STATE
    imp, unit, offsets, explicit = task
    return process_unit(env, imp, unit, offsets, explicit, blocks)


def _repos(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if (p / ".git").is_dir()) if root.is_dir() else []


def workers_for(n_units: int, total_bytes: int) -> int:
    """Worker processes: one per core for big runs; none for small ones (a fork costs more than it saves)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if n_units < 8 or total_bytes < 8 << 20:
        return 0
    return max(0, min(cores, 4))


def run_import(env: Env, homes: dict[str, Path], exports: list[tuple[str, Path]] | None = None,
               client: str | None = None, progress: Progress | None = None, workers: int | None = None) -> Summary:
    """Import `homes` (platform -> home folder) and `exports` ((platform, file)); `client` names the client of the
    exports, which carry no working directory for the rules to match. Big runs parse, redact and render in
    worker processes (one per core); this process alone writes the index and commits."""
    global _POOL_STATE
    t0 = time.monotonic()
    summary = Summary()
    conn = index.connect(env.lore_root)
    for repo in _repos(env.lore_root):
        archive.clean_temp(repo)
    units = discover(env, homes, list(exports or []), summary)
    blocks = sentinel_blocks(env.audit_dir)
    summary.units = len(units)
    tasks: list[Task] = []
    pending = 0  # bytes the parsers will read: decides whether worker processes pay off
    task_units: list[tuple[Importer, Unit]] = []
    for imp, unit, is_export in units:
        if _unchanged(conn, unit):
            summary.skipped_units += 1
            continue
        offsets = _offsets(conn, unit) if imp.incremental else {}
        if offsets and unit.native_id:
            where = index.located(conn, f"{unit.platform}:{unit.native_id}")
            if where is None or not (env.lore_root / where[0] / where[1]).exists():
                offsets = {}  # the archived copy is gone: read the whole source again
        tasks.append((imp, unit, offsets, client if is_export else None))
        task_units.append((imp, unit))
        pending += sum(max(0, (_stat(p) or (0, 0))[0] - offsets.get(str(p), 0)) for p in unit.paths)
    n = workers if workers is not None else workers_for(len(tasks), pending)
    if n > 1:
        import multiprocessing

        _POOL_STATE = (env, blocks)
        pool = multiprocessing.get_context("fork").Pool(n)
        results: Any = pool.imap(_pool_work, tasks, chunksize=1)
    else:
        pool = None
        results = (process_unit(env, imp, unit, offsets, explicit, blocks)
                   for imp, unit, offsets, explicit in tasks)
    try:
        for i, ((_imp, unit), (_, _, offsets, _), res) in enumerate(zip(task_units, tasks, results, strict=True)):
            if progress:
                progress(summary.skipped_units + i, len(units), str(unit.paths[0]))
            summary.bad_lines += res.report.bad_lines
            summary.replaced_utf8 += res.report.replaced_utf8
            summary.errors += res.report.errors + res.errors
            summary.bytes_read += sum(max(0, res.offsets.get(str(p), 0) - offsets.get(str(p), 0))
                                      for p in unit.paths)
            with index.transaction(conn):
                for prep in res.prepared:
                    if prep.rows is not None:
                        index.write(conn, prep.rows, fresh=prep.new and index.located(conn, prep.key) is None)
                    if not prep.changed:
                        summary.unchanged += 1
                    elif prep.new:
                        summary.added[prep.client] += 1
                    else:
                        summary.updated[prep.client] += 1
                if res.complete:
                    _record(conn, unit, res.offsets, [p.key for p in res.prepared])
    finally:
        if pool is not None:
            pool.close()
            pool.join()
            _POOL_STATE = None
    for repo in _repos(env.lore_root):  # every client repository: an interrupted run may have left files
        name = repo.name
        msg = f"lore import: {summary.added[name]} added, {summary.updated[name]} updated"
        sha = archive.commit(repo, msg)
        if sha:
            summary.commits[name] = sha
    if progress:
        progress(len(units), len(units), "done")
    conn.close()
    summary.seconds = time.monotonic() - t0
    return summary
