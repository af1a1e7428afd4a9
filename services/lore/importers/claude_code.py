"""Claude Code importer: `$CLAUDE_HOME/projects/<escaped-cwd>/<sessionId>.jsonl` plus subagent transcripts.

One unit per session id: the main transcript and its subagent files, in the three layouts Claude Code has used:
inline sidechain lines in the main file (CLI 1.0.x), flat `agent-<id>.jsonl` beside it (2.0.x; the lines carry
the parent's `sessionId`) and `<sessionId>/subagents/agent-<id>.jsonl` (2.1.x).

Rules, in the order `parse` applies them:
- Lines: one JSON object per line, read from the stored byte offset; a trailing line without "\\n" is left for the
  next import. Malformed lines are skipped and reported as file:line (lines counted from the file start).
- Threads: the main conversation is the `parentUuid` chain (a compaction boundary continues through its
  `logicalParentUuid`) walked back from the last non-sidechain record in the file: Claude Code appends, so the
  last record is the current leaf even after a rewind, and a `summary` leaf can be older than the file's end.
  Sidechain records go to `sidechain:<agentId>`; non-sidechain records off that chain (abandoned branches) go to
  `alternate:<n>`, one number per abandoned subtree, never into "main". In an incremental read the walk stops at
  the first parent that was read before, so the new tail of the chain is "main".
- Messages: assistant lines sharing `message.id` are one message (blocks in line order). A sidechain assistant
  message's id is `<message.id>@<agentId>`: a `/btw` side question replays a parent message under the same
  `message.id`, and scoping by agent keeps ids unique and stable across incremental reads.
- Calls: assistant lines with `message.usage`, except model "<synthetic>"; dedupe on (message.id, requestId)
  preferring a non-sidechain line, then the largest input+output+cache_creation+cache_read total; then among the
  survivors sharing a `message.id` (different requestIds), sidechain ones are dropped when a non-sidechain one
  exists (/btw replays), and several sidechain-only ones keep the largest. Lines without message.id or requestId
  are one call each. The dedupe sees the lines of one read: a call whose lines straddle two incremental reads
  is emitted by both, with the same (message_id, request_id), for the archive to keep the larger; a /btw replay
  whose original was imported earlier is recognised from the main file's already-imported bytes.
- Title: the latest `custom-title` (/rename), else `ai-title`, else `summary`, else the first human prompt.
- Denied tool calls: tool_result blocks flagged `is_error` whose text is Claude Code's refusal ("The user doesn't
  want to proceed...", "Permission to use ... has been denied") or a SENTINEL hook block ("SENTINEL blocked").
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ..model import Call, Message, Session, SourceFile, Usage
from . import Importer, ImportFailed, Parsed, Report, Unit

PLATFORM = "claude_code"
VERSION = "1"
MESSAGE_TYPES = frozenset({"user", "assistant", "system"})
SYNTHETIC_MODEL = "<synthetic>"
TITLE_TYPES = frozenset({"summary", "custom-title", "ai-title"})
TITLE_LEN = 80
CHUNK = 1 << 22  # prefix reads for hashing and line counting
MESSAGE_ID_RE = re.compile(rb'"id":"([^"\\]+)"')  # compact JSON as Claude Code writes it; in strings quotes are escaped


# --- discover ----------------------------------------------------------------------------------------------------


def discover(root: Path) -> list[Unit]:
    """Every session under `root/projects`, with its subagent files, sorted by project folder then session id."""
    projects = Path(root) / "projects"
    try:
        folders = sorted(e.path for e in os.scandir(projects) if e.is_dir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    units: list[Unit] = []
    for folder in folders:
        units.extend(_project_units(folder))
    return units


def _project_units(folder: str) -> list[Unit]:
    mains: dict[str, Path] = {}
    subs: dict[str, list[Path]] = {}
    for e in os.scandir(folder):
        name = e.name
        if e.is_dir():
            for p in _subagent_files(os.path.join(e.path, "subagents")):
                subs.setdefault(name, []).append(p)
        elif name.endswith(".jsonl") and e.is_file():
            if name.startswith("agent-"):
                sid = _first_session_id(e.path)
                if sid:  # an empty or unreadable agent file is attributed on a later import
                    subs.setdefault(sid, []).append(Path(e.path))
            else:
                mains[name[: -len(".jsonl")]] = Path(e.path)
    units = []
    for sid in sorted(mains.keys() | subs.keys()):
        extra = sorted(subs.get(sid, ()))
        main = mains.get(sid)
        units.append(Unit(platform=PLATFORM, paths=[main, *extra] if main else extra, native_id=sid))
    return units


def _subagent_files(folder: str) -> list[Path]:
    try:
        return [Path(e.path) for e in os.scandir(folder) if e.name.endswith(".jsonl") and e.is_file()]
    except (FileNotFoundError, NotADirectoryError):
        return []


def _first_session_id(path: str) -> str | None:
    """The `sessionId` of the first line that has one, found by a byte search (no JSON parse: discover stays fast).

    The pattern `"sessionId":"` cannot occur inside a JSON string (its quotes would be escaped), and Claude Code
    writes the envelope keys before `message`, so the first hit is the line's own sessionId.
    """
    key = b'"sessionId":"'
    try:
        with open(path, "rb") as f:
            for _ in range(8):
                line = f.readline()
                if not line:
                    return None
                i = line.find(key)
                if i >= 0:
                    j = line.find(b'"', i + len(key))
                    if j > i + len(key):
                        return line[i + len(key) : j].decode("utf-8", "replace")
    except OSError:
        return None
    return None


# --- reading -----------------------------------------------------------------------------------------------------


@dataclass
class _Chunk:
    """The complete lines of one file from the stored offset on."""

    body: bytes
    first_line: int  # 1-based line number of body's first line
    end: int  # new offset: end of the last complete line
    source: SourceFile
    prefix: bytes = b""  # the bytes before the offset, kept for the main file only


def _read(path: Path, start: int, keep_prefix: bool) -> _Chunk:
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if start > size:  # the file was replaced by a shorter one: read it again from the top
            start = 0
        digest = hashlib.sha256()
        kept: list[bytes] = []
        newlines = pos = 0
        while pos < start:  # the prefix is hashed for provenance and counted for line numbers, not parsed
            block = f.read(min(CHUNK, start - pos))
            if not block:
                break
            digest.update(block)
            newlines += block.count(b"\n")
            pos += len(block)
            if keep_prefix:
                kept.append(block)
        data = f.read()
    cut = data.rfind(b"\n") + 1
    body = data if cut == len(data) else data[:cut]
    digest.update(body)
    end = pos + cut
    return _Chunk(body, newlines + 1, end, SourceFile(path=str(path), sha256=digest.hexdigest(), size=end),
                  b"".join(kept))


class _Imported:
    """Main-thread message ids in the part of the main file read by earlier imports, looked up on demand: a /btw
    replay read now may copy a message whose main-thread line was imported last time."""

    def __init__(self, prefix: bytes) -> None:
        self.prefix = prefix
        self.positions: dict[str, list[int]] | None = None

    def has_main(self, mid: str) -> bool:
        if not self.prefix:
            return False
        if self.positions is None:  # one C-level scan of the prefix, only when a read needs it
            self.positions = {}
            for m in MESSAGE_ID_RE.finditer(self.prefix):
                self.positions.setdefault(m.group(1).decode("utf-8", "replace"), []).append(m.start())
        for pos in self.positions.get(mid, ()):
            lo, hi = self.prefix.rfind(b"\n", 0, pos) + 1, self.prefix.find(b"\n", pos)
            try:
                d = orjson.loads(self.prefix[lo : hi if hi >= 0 else len(self.prefix)])
            except orjson.JSONDecodeError:
                continue
            if isinstance(d, dict) and d.get("type") == "assistant" and d.get("isSidechain") is not True:
                return True
        return False


def recover_line(raw: bytes, path: Path, lineno: int, report: Report, err: Exception) -> Any:
    """Slow path for a line orjson refused: invalid UTF-8 or lone surrogate escapes are replaced, anything else is
    reported as malformed (None). Shared with the other JSONL importers."""
    try:
        text, replaced = raw.decode("utf-8"), False
    except UnicodeDecodeError:
        text, replaced = raw.decode("utf-8", "replace"), True
    try:
        obj = json.loads(text)
    except ValueError:
        report.bad(path, lineno, f"malformed JSON ({err})")
        return None
    dumped = json.dumps(obj, ensure_ascii=False)
    try:
        dumped.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from an escape such as "\ud83d": replace them
        obj = json.loads(dumped.encode("utf-8", "replace"))
        replaced = True
    if replaced:
        report.replaced_utf8 += 1
    return obj


# --- parse -------------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Rec:
    """One user/assistant/system line."""

    d: dict[str, Any]
    kind: str
    uuid: str | None
    side: bool
    agent: str
    where: str  # "file:line", for ids of records without uuid
    thread: str = "main"


@dataclass
class _Cand:
    """A usage line that may become a Call."""

    index: int
    mid: str | None
    rid: str | None
    side: bool
    usage: Usage
    total: int
    rec: _Rec


@dataclass
class _State:
    report: Report
    recs: list[_Rec] = field(default_factory=list)
    parents: dict[str, str | None] = field(default_factory=dict)  # every uuid read -> parentUuid
    titles: list[dict[str, Any]] = field(default_factory=list)  # summary, custom-title and ai-title lines
    imported: _Imported = field(default_factory=lambda: _Imported(b""))
    started: str | None = None
    ended: str | None = None
    cwd: str | None = None
    branch: str | None = None
    version: str | None = None

    def scan(self, chunk: _Chunk, path: Path, side_file: bool, file_agent: str) -> None:
        loads = orjson.loads
        for lineno, raw in enumerate(chunk.body.split(b"\n"), chunk.first_line):
            if not raw:
                continue
            try:
                d = loads(raw)
            except orjson.JSONDecodeError as e:
                d = recover_line(raw, path, lineno, self.report, e)
                if d is None:
                    continue
            if isinstance(d, dict):
                self.take(d, side_file, file_agent, path, lineno)
            else:
                self.report.bad(path, lineno, "not a JSON object")

    def take(self, d: dict[str, Any], side_file: bool, file_agent: str, path: Path, lineno: int) -> None:
        kind = d.get("type")
        if kind in TITLE_TYPES:
            self.titles.append(d)
            return
        uuid = d.get("uuid")
        if uuid is not None:  # progress and other non-message lines still link the chain
            self.parents[uuid] = d.get("parentUuid") or d.get("logicalParentUuid")
        ts = d.get("timestamp")
        if isinstance(ts, str):
            if self.started is None or ts < self.started:
                self.started = ts
            if self.ended is None or ts > self.ended:
                self.ended = ts
        if kind not in MESSAGE_TYPES:
            return
        if self.cwd is None:
            self.cwd = d.get("cwd") or None
        if self.branch is None:
            self.branch = d.get("gitBranch") or None
        if self.version is None:
            self.version = d.get("version") or None
        side = side_file or d.get("isSidechain") is True
        agent = d.get("agentId") or file_agent
        self.recs.append(_Rec(d, kind, uuid, side, agent, f"{path.name}:{lineno}"))


def parse(unit: Unit, report: Report, offsets: dict[str, int]) -> Parsed:
    state = _State(report)
    new_offsets: dict[str, int] = {}
    sources: list[SourceFile] = []
    main_from_top = False
    for i, path in enumerate(unit.paths):
        side_file = _is_subagent_file(path)
        is_main = i == 0 and not side_file
        try:
            chunk = _read(path, offsets.get(str(path), 0), keep_prefix=is_main)
        except OSError as e:
            if i == 0:
                raise ImportFailed(f"Cannot read Claude Code transcript {path}: {e.strerror or e}.") from e
            report.errors.append(f"{path}: cannot read subagent transcript ({e.strerror or e})")
            continue
        new_offsets[str(path)] = chunk.end
        sources.append(chunk.source)
        if is_main:
            state.imported = _Imported(chunk.prefix)
            main_from_top = chunk.first_line == 1
        state.scan(chunk, path, side_file, path.stem[len("agent-") :] if side_file else "unknown")
    session = _build(unit, state, main_from_top)
    session.sources = sources
    return Parsed(sessions=[session], offsets=new_offsets)


def _is_subagent_file(path: Path) -> bool:
    return path.name.startswith("agent-") or path.parent.name == "subagents"


def _build(unit: Unit, state: _State, main_from_top: bool) -> Session:
    recs = state.recs
    chain = _assign_threads(recs, state.parents)
    messages, ids = _messages(recs, state.parents, chain)
    sid = unit.native_id or _session_id(recs) or unit.paths[0].stem
    session = Session(platform=PLATFORM, native_id=sid, messages=messages, calls=_calls(recs, ids, state.imported),
                      started=state.started, ended=state.ended, cwd=state.cwd, git_branch=state.branch,
                      importer_version=VERSION, denied_tool_calls=_count_denied(messages))
    session.title = _title(state, messages, main_from_top)
    if state.version:
        session.extra["cli_version"] = state.version
    return session


def _session_id(recs: list[_Rec]) -> str | None:
    return next((r.d["sessionId"] for r in recs if isinstance(r.d.get("sessionId"), str)), None)


# --- threads -----------------------------------------------------------------------------------------------------


def _assign_threads(recs: list[_Rec], parents: dict[str, str | None]) -> dict[str, int]:
    """Set each record's thread; return the main chain as uuid -> position (root first)."""
    u = next((r.uuid for r in reversed(recs) if not r.side and r.uuid is not None), None)
    path: list[str] = []
    seen: set[str] = set()
    while u is not None and u not in seen:
        seen.add(u)
        path.append(u)
        p = parents[u]
        u = p if p is None or p in parents else _bridge(u, recs, parents)
    chain = {uuid: pos for pos, uuid in enumerate(reversed(path))}
    branch_of: dict[str, int] = {}
    roots: dict[str | None, int] = {}
    for r in recs:
        if r.side:
            r.thread = f"sidechain:{r.agent}"
        elif r.uuid is None or r.uuid in chain:
            r.thread = "main"
        else:
            r.thread = f"alternate:{_branch(r.uuid, parents, chain, branch_of, roots)}"
    return chain


def _bridge(top: str, recs: list[_Rec], parents: dict[str, str | None]) -> str | None:
    """The chain reached a parent that was not read: a malformed line (gap) or a line read by an earlier import.
    Continue from the last non-sidechain record written before `top`; in an incremental read there is none."""
    order = {uuid: i for i, uuid in enumerate(parents)}  # parents is in line order; rare path, so built here
    limit = order[top]
    best: str | None = None
    for r in recs:
        if r.uuid is not None and not r.side and order[r.uuid] < limit:
            best = r.uuid
    return best


def _branch(uuid: str, parents: dict[str, str | None], chain: dict[str, int], branch_of: dict[str, int],
            roots: dict[str | None, int]) -> int:
    """Number of the abandoned subtree holding `uuid`: records sharing an off-chain ancestor share a number."""
    walked: list[str] = []
    u: str | None = uuid
    while u is not None and u in parents and u not in chain and u not in branch_of:
        walked.append(u)
        u = parents[u]
        if len(walked) > len(parents):  # a parent cycle in a damaged file
            break
    if u is not None and u in branch_of:
        n = branch_of[u]
    else:  # a new subtree, keyed by its topmost off-chain record
        n = roots.setdefault(walked[-1] if walked else u, len(roots) + 1)
    for w in walked:
        branch_of[w] = n
    return n


# --- messages ----------------------------------------------------------------------------------------------------


def _message_id(r: _Rec) -> str:
    if r.kind == "assistant":
        m = r.d.get("message")
        mid = m.get("id") if isinstance(m, dict) else None
        if isinstance(mid, str) and mid:
            return f"{mid}@{r.agent}" if r.side else mid
    return r.uuid or r.where


def _messages(recs: list[_Rec], parents: dict[str, str | None],
              chain: dict[str, int]) -> tuple[list[Message], list[str]]:
    """Logical messages (main first, in chain order, then the other threads) and each record's message id."""
    by_id: dict[str, Message] = {}
    first: dict[str, tuple[int, int]] = {}  # message id -> sort key
    logical: dict[str, str] = {}  # line uuid -> message id
    ids: list[str] = []
    thread_rank: dict[str, int] = {"main": 0}
    for i, r in enumerate(recs):
        mid = _message_id(r)
        ids.append(mid)
        blocks = _content(r)
        m = by_id.get(mid)
        if m is None:
            m = _new_message(r, mid, _resolve(r.d, parents, logical))
            by_id[mid] = m
            rank = thread_rank.setdefault(r.thread, len(thread_rank))
            first[mid] = (rank, chain.get(r.uuid, i) if rank == 0 and r.uuid else i)
        m.content.extend(blocks)
        if r.uuid is not None:
            logical[r.uuid] = mid
    ordered = sorted(by_id.values(), key=lambda msg: first[msg.id])
    return ordered, ids


def _new_message(r: _Rec, mid: str, parent: str | None) -> Message:
    d = r.d
    meta: dict[str, Any] = {}
    model = None
    if r.kind == "assistant":
        m = d.get("message")
        model = m.get("model") if isinstance(m, dict) else None
        if model == SYNTHETIC_MODEL:  # a placeholder Claude Code writes itself, not a model's answer
            model, meta["synthetic"] = None, True
        if d.get("isApiErrorMessage"):
            meta["api_error"] = True
    elif r.kind == "system":
        for key in ("subtype", "durationMs", "level"):
            if d.get(key) is not None:
                meta[key] = d[key]
    if d.get("isMeta"):
        meta["isMeta"] = True
    if d.get("isCompactSummary"):
        meta["compact_summary"] = True
    return Message(id=mid, role=r.kind, content=[], time=d.get("timestamp"), model=model, thread=r.thread,
                   parent=parent, meta=meta)


def _resolve(d: dict[str, Any], parents: dict[str, str | None], logical: dict[str, str]) -> str | None:
    """The parent message id: the parent line's message, skipping non-message lines (progress, snapshots).
    A parent read in an earlier import stays the raw parentUuid."""
    p = d.get("parentUuid") or d.get("logicalParentUuid")
    for _ in range(len(parents) + 1):
        if p is None:
            return None
        mid = logical.get(p)
        if mid is not None:
            return mid
        if p not in parents:
            return str(p)
        p = parents[p]
    return None


def _content(r: _Rec) -> list[dict[str, Any]]:
    d = r.d
    if r.kind == "system":
        text = d.get("content")
        return [{"type": "text", "text": text}] if isinstance(text, str) and text else []
    m = d.get("message")
    if not isinstance(m, dict):
        return []
    content = m.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        return []
    out: list[dict[str, Any]] = []
    for b in content:
        block = _block(b)
        if block is not None:
            out.append(block)
    return out


def _block(b: Any) -> dict[str, Any] | None:
    if isinstance(b, str):
        return {"type": "text", "text": b}
    if not isinstance(b, dict):
        return None
    t = b.get("type")
    if t == "text":
        return {"type": "text", "text": b.get("text") or ""}
    if t == "thinking":  # the signature is an opaque integrity token: dropped
        return {"type": "thinking", "text": b.get("thinking") or b.get("text") or ""}
    if t in ("tool_use", "server_tool_use"):
        return {"type": "tool_use", "id": b.get("id"), "name": b.get("name"), "input": b.get("input")}
    if t == "tool_result" or (isinstance(t, str) and t.endswith("_tool_result")):
        return {"type": "tool_result", "tool_use_id": b.get("tool_use_id"), "content": _result_text(b.get("content")),
                "is_error": b.get("is_error") is True}
    if t in ("image", "document"):
        return _attachment(b, "image" if t == "image" else "file")
    return None  # redacted_thinking and unknown blocks carry nothing readable


def _result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return "" if content is None else str(content)


def _attachment(b: dict[str, Any], kind: str) -> dict[str, Any]:
    """An inline image or document becomes a reference: base64 data by its hash, a URL or file id as is."""
    src = _dict(b.get("source"))
    data = src.get("data")
    if isinstance(data, str):
        ref = "sha256:" + hashlib.sha256(data.encode()).hexdigest()
    else:
        ref = str(src.get("url") or src.get("file_id") or "")
    return {"type": "attachment", "ref": ref, "name": b.get("title"), "kind": kind}


# --- title, denials ----------------------------------------------------------------------------------------------


def _title(state: _State, messages: list[Message], main_from_top: bool) -> str | None:
    """The latest /rename (`custom-title`), else the latest `ai-title`, else a `summary` (preferring one whose leaf
    is in this read), else the first human prompt; the prompt only when the main file was read from its start, as
    a tail's first prompt is not the session's title (the archive then keeps the title it has)."""
    by_kind: dict[str, list[str]] = {}
    for d in state.titles:
        kind = d.get("type")
        text = d.get("customTitle" if kind == "custom-title" else "aiTitle" if kind == "ai-title" else "summary")
        if isinstance(text, str) and text.strip():
            by_kind.setdefault(str(kind), []).append(text.strip())
    leafed = [str(d["summary"]).strip() for d in state.titles
              if d.get("type") == "summary" and d.get("summary") and d.get("leafUuid") in state.parents]
    for texts in (by_kind.get("custom-title"), by_kind.get("ai-title"), leafed, by_kind.get("summary")):
        if texts:
            return texts[-1]
    if main_from_top:
        for m in messages:
            text = _prompt_text(m)
            if text:
                return " ".join(text.split())[:TITLE_LEN]
    return None


def _prompt_text(m: Message) -> str | None:
    """The text of a human prompt: a main-thread user message with text and no tool result, not a command echo."""
    if m.role != "user" or m.thread != "main" or m.meta.get("isMeta"):
        return None
    if any(b["type"] == "tool_result" for b in m.content):
        return None
    text = "\n".join(b["text"] for b in m.content if b["type"] == "text").strip()
    return text if text and not text.startswith("<") else None


def _is_denial(text: str) -> bool:
    return (text.startswith("The user doesn't want to proceed")
            or ("Permission to use" in text and "denied" in text)
            or "SENTINEL blocked" in text)


def _count_denied(messages: list[Message]) -> int:
    return sum(1 for m in messages if m.role == "user" for b in m.content
               if b["type"] == "tool_result" and b["is_error"] and _is_denial(b["content"]))


# --- calls -------------------------------------------------------------------------------------------------------


def _candidates(recs: list[_Rec]) -> list[_Cand]:
    out: list[_Cand] = []
    for i, r in enumerate(recs):
        if r.kind != "assistant":
            continue
        m = r.d.get("message")
        if not isinstance(m, dict) or m.get("model") == SYNTHETIC_MODEL:
            continue
        u = m.get("usage")
        if not isinstance(u, dict):
            continue
        usage = Usage(int(u.get("input_tokens") or 0), int(u.get("output_tokens") or 0),
                      int(u.get("cache_creation_input_tokens") or 0), int(u.get("cache_read_input_tokens") or 0))
        mid, rid = m.get("id"), r.d.get("requestId")
        out.append(_Cand(i, mid if isinstance(mid, str) else None, rid if isinstance(rid, str) else None,
                         r.side, usage, usage.total(), r))
    return out


def _dedupe(cands: list[_Cand], imported: _Imported) -> list[_Cand]:
    win: dict[tuple[str, str], _Cand] = {}
    loose: list[_Cand] = []
    for c in cands:
        if c.mid is None or c.rid is None:
            loose.append(c)
            continue
        key = (c.mid, c.rid)
        prev = win.get(key)
        if prev is None or (prev.side and not c.side) or (prev.side == c.side and c.total > prev.total):
            win[key] = c
    by_mid: dict[str, list[_Cand]] = {}
    for c in win.values():
        by_mid.setdefault(c.mid or "", []).append(c)
    kept = loose
    for mid, group in by_mid.items():
        mains = [c for c in group if not c.side]
        if not mains:
            if not imported.has_main(mid):  # else: a /btw replay of a main-thread call imported last time
                kept.append(max(group, key=lambda c: c.total))
        elif len(group) == 1:
            kept.append(group[0])
        else:  # /btw replays: the sidechain copies of a main-thread call
            kept.extend(mains)
    kept.sort(key=lambda c: c.index)
    return kept


def _calls(recs: list[_Rec], ids: list[str], imported: _Imported) -> list[Call]:
    out = []
    for c in _dedupe(_candidates(recs), imported):
        r = c.rec
        m = r.d["message"]
        out.append(Call(time=r.d.get("timestamp"), model=m.get("model"), usage=c.usage, message_id=ids[c.index],
                        thread=r.thread, request_id=c.rid))
    return out


def _dict(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


IMPORTER = Importer(platform=PLATFORM, version=VERSION, discover=discover, parse=parse, incremental=True)
