"""The archive: one `lore.session/v1` YAML file per session, in one git repository per client.

    $LORE_ROOT/<client>/sessions/<platform>/<YYYY>/<MM>/<date>_<id8>_<slug>.yaml

The path comes from stable fields only (start date, native id, and the project folder or the first prompt), and a
session that is already archived keeps its path, so re-imports never rename. A document is rebuilt from the
previous one plus what the importer read: messages merge by id, calls by (message, request), knowledge state and
its history carry over, and nothing in it depends on the time of the import, so re-importing unchanged sources
writes identical bytes (and `git status` stays empty). Files are written to a temporary name and renamed, so a
process killed mid-write leaves the previous version or nothing, never half a file.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from .clients import Client
from .model import SCHEMA, USAGE_KEYS, Call, Message, Session, Usage
from .pricing import PriceTable
from .redact import Redactor, scan

_PLACEHOLDER_RE = re.compile(r"\[REDACTED:([a-z0-9-]+):[0-9a-f]{8}\]")
TMP_MARK = ".tmp-"


class SecretLeft(Exception):
    """The rendered document still holds something secret-shaped after redaction: it is not written."""


# ------------------------------------------------------------------------------------------------ paths

def slugify(text: str, limit: int = 40) -> str:
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    slug = re.sub(r"[^a-z0-9]+", "-", text).strip("-")
    return slug[:limit].rstrip("-") or "session"


def _first_prompt(s: Session) -> str:
    for m in sorted(s.messages, key=lambda m: m.time or ""):
        if m.role == "user":
            for b in m.content:
                if b.get("type") == "text" and str(b.get("text") or "").strip():
                    return str(b["text"])
    return ""


def session_path(s: Session) -> str:
    """Relative path inside the client repository, from fields that do not change when a session grows."""
    day = (s.started or "")[:10]
    year, month = (day[:4], day[5:7]) if re.match(r"^\d{4}-\d{2}-\d{2}$", day) else ("undated", "00")
    id8 = re.sub(r"[^A-Za-z0-9]", "", s.native_id)[:8] or "noid"
    topic = os.path.basename(s.cwd.rstrip("/")) if s.cwd else _first_prompt(s)
    name = f"{day or 'undated'}_{id8}_{slugify(topic)}.yaml"
    return f"sessions/{s.platform}/{year}/{month}/{name}"


# ------------------------------------------------------------------------------------------------ documents

def content_hash(content: list[dict[str, Any]]) -> str:
    return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


@dataclass
class Context:
    """What the archive adds to an importer's session."""

    client: Client
    redactor: Redactor
    prices: PriceTable
    blocked_by_sentinel: list[dict[str, Any]]  # SENTINEL block events for this session id (from the audit log)
    importer_version: str


def _merge_messages(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """By id, in first-seen order. A message seen again (a streamed reply split across two reads) keeps its
    blocks and gains the ones it did not have."""
    out: dict[str, dict[str, Any]] = {m["id"]: m for m in old}
    for m in new:
        prev = out.get(m["id"])
        if prev is None:
            out[m["id"]] = m
            continue
        have = {content_hash([b]) for b in prev.get("content") or []}
        extra = [b for b in m.get("content") or [] if content_hash([b]) not in have]
        if extra or any(m.get(k) and not prev.get(k) for k in ("time", "model", "parent")):
            merged = {**prev, **{k: v for k, v in m.items() if v and not prev.get(k)}}
            merged["content"] = list(prev.get("content") or []) + extra
            out[m["id"]] = merged
    return list(out.values())


def _call_key(c: dict[str, Any]) -> tuple[Any, ...]:
    if c.get("message_id") and c.get("request_id"):
        return ("id", c["message_id"], c["request_id"])
    return ("raw", c.get("time"), c.get("model"), *(c.get(k) for k in USAGE_KEYS))


def _merge_calls(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """By (message id, request id), keeping the larger count: the same rule the importers apply within one read."""
    out: dict[tuple[Any, ...], dict[str, Any]] = {_call_key(c): c for c in old}
    for c in new:
        k = _call_key(c)
        prev = out.get(k)
        if prev is None or sum(c.get(f) or 0 for f in USAGE_KEYS) > sum(prev.get(f) or 0 for f in USAGE_KEYS):
            out[k] = c
    return sorted(out.values(), key=lambda c: c.get("time") or "")


def _redaction_counts(messages: list[dict[str, Any]], title: str | None) -> dict[str, int]:
    # Counted from the placeholders in the final document, so merges and re-imports never double-count.
    blob = orjson.dumps(messages).decode() + (title or "")
    return dict(sorted(Counter(_PLACEHOLDER_RE.findall(blob)).items()))


def build(s: Session, ctx: Context, old: dict[str, Any] | None) -> dict[str, Any]:
    """The document for `s`, merged into the previously archived one (`old`) if there is one."""
    red = ctx.redactor
    new_msgs = []
    for m in s.messages:
        d = m.to_dict()
        d["content"] = red.walk(d["content"])
        new_msgs.append(d)
    messages = _merge_messages(list((old or {}).get("messages") or []), new_msgs)
    for d in messages:
        d["hash"] = content_hash(d["content"])
    calls = _merge_calls(list((old or {}).get("calls") or []), [c.to_dict() for c in s.calls])
    call_objs = [Call.from_dict(c) for c in calls]
    total = Usage()
    by_model: dict[str, Usage] = {}
    for c in call_objs:
        total = total.plus(c.usage)
        by_model[c.model or "unknown"] = by_model.get(c.model or "unknown", Usage()).plus(c.usage)
    cost, unpriced = ctx.prices.session_cost(call_objs) if call_objs else (None, [])
    title = red.text(s.title) if s.title else (old or {}).get("title")
    prev_src = {f["path"]: f for f in ((old or {}).get("source") or {}).get("files") or []}
    for f in s.sources:
        prev_src[f.path] = f.to_dict()
    times: list[str] = [str(m["time"]) for m in messages if m.get("time")]
    times += [t for t in (s.started, s.ended, (old or {}).get("started"), (old or {}).get("ended")) if t]
    models = list(dict.fromkeys([*(c.model for c in call_objs if c.model), *(m.get("model") for m in messages
                                                                               if m.get("model"))]))
    blocked = ctx.blocked_by_sentinel
    denied = _denied(s, messages)
    adverse = [{"time": e.get("ts"), "kind": "sentinel-block", "rule": e.get("rule_id"),
                "tool_use_id": e.get("tool_use_id")} for e in blocked]
    knowledge = (old or {}).get("knowledge") or {
        "state": "hypothesis", "history": [{"state": "hypothesis", "at": min(times) if times else None,
                                            "by": "importer"}]}
    project = {"cwd": s.cwd or ((old or {}).get("project") or {}).get("cwd"),
               "git_branch": s.git_branch or ((old or {}).get("project") or {}).get("git_branch"),
               "git_remote": s.git_remote or ((old or {}).get("project") or {}).get("git_remote")}
    return {
        "schema": SCHEMA,
        "key": s.key,
        "platform": s.platform,
        "native_id": s.native_id,
        "title": title,
        "source": {"importer": f"{s.platform}/{ctx.importer_version}",
                   "files": [prev_src[p] for p in sorted(prev_src)]},
        "project": project,
        "started": min(times) if times else None,
        "ended": max(times) if times else None,
        "models": models,
        "usage": total.to_dict() if total.known() else dict.fromkeys(USAGE_KEYS),
        "usage_by_model": {k: v.to_dict() for k, v in sorted(by_model.items())},
        "cost_usd": cost,
        "unpriced_models": unpriced,
        "knowledge": knowledge,
        "security": {
            "client": ctx.client.name,
            "access_level": ctx.client.access_level,
            "data_classification": ctx.client.data_classification,
            "adverse_events": adverse,
            "tool_calls_blocked": len(blocked) + denied,
            "denied_in_transcript": denied,
            "redactions": _redaction_counts(messages, title),
        },
        "extra": {**((old or {}).get("extra") or {}), **s.extra},
        "stats": _stats(messages),
        "calls": calls,
        "messages": messages,
    }


def _denied(s: Session, messages: list[dict[str, Any]]) -> int:
    """Refused tool calls in the merged document (an incremental read sees only its tail, so recount here)."""
    import importlib

    try:
        count = importlib.import_module(f"{__package__}.importers.{s.platform}")._count_denied
    except (ImportError, AttributeError):
        return s.denied_tool_calls
    return int(count([Message.from_dict(m) for m in messages]))


def _stats(messages: list[dict[str, Any]]) -> dict[str, int]:
    st: Counter[str] = Counter()
    for m in messages:
        st["messages"] += 1
        main = (m.get("thread") or "main") == "main"
        for b in m.get("content") or []:
            t = b.get("type")
            if t == "text" and m["role"] == "user":
                st["prompts" if main else "subagent_prompts"] += 1
            elif t == "tool_use":
                st["tool_calls"] += 1
            elif t == "thinking":
                st["thinking"] += 1
    return {k: st[k] for k in ("messages", "prompts", "subagent_prompts", "tool_calls", "thinking")}


def _strings(obj: Any, out: list[str]) -> list[str]:
    if isinstance(obj, str):
        out.append(obj)
    elif isinstance(obj, dict):
        for v in obj.values():
            _strings(v, out)
    elif isinstance(obj, list):
        for v in obj:
            _strings(v, out)
    return out


def render(doc: dict[str, Any]) -> bytes:
    """The YAML bytes, refused if anything secret-shaped survived redaction. The scan reads every string of the
    document as written (YAML's quoting would put escapes like `\\n` next to values and hide their ends)."""
    from . import yamlio

    text = yamlio.dump(doc)
    left = scan("\n".join(_strings(doc, [])))
    if left:
        rules = ", ".join(sorted({r for r, _ in left}))
        raise SecretLeft(f"{doc.get('key')}: secret-shaped text left after redaction ({rules}); not written")
    return text.encode("utf-8")


def messages_of(doc: dict[str, Any]) -> list[Message]:
    return [Message.from_dict(m) for m in doc.get("messages") or []]


# ------------------------------------------------------------------------------------------------ files and git

def write_atomic(path: Path, data: bytes) -> bool:
    """Write unless the file already holds exactly these bytes. True when it changed."""
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)  # atomic: readers see the old file or the new one
    return True


def clean_temp(repo: Path) -> int:
    """Remove temporary files a killed import left behind. Returns how many."""
    n = 0
    sessions = repo / "sessions"
    if not sessions.is_dir():
        return 0
    for dirpath, _dirs, files in os.walk(sessions):
        for f in files:
            if f.startswith(".") and TMP_MARK in f:
                os.unlink(os.path.join(dirpath, f))
                n += 1
    return n


def _git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, check=check)


def ensure_repo(repo: Path) -> None:
    if (repo / "sessions").is_dir():  # made last: the repository is complete
        return
    import fcntl

    lock_dir = repo.parent / ".lore"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / "init.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # import workers may meet a new client at the same moment
        if (repo / "sessions").is_dir():
            return
        _init_repo(repo)
        (repo / "sessions").mkdir(exist_ok=True)


def _init_repo(repo: Path) -> None:
    repo.mkdir(parents=True, exist_ok=True)
    if (repo / ".git").exists():
        return
    _git(repo, "init", "-q", "-b", "main")
    # An archive must commit even where the user has no global git identity.
    _git(repo, "config", "user.name", "LORE")
    _git(repo, "config", "user.email", "lore@localhost")
    _git(repo, "config", "core.quotepath", "false")


def commit(repo: Path, message: str, paths: Iterable[str] = ("sessions",)) -> str | None:
    """Stage and commit; None when there was nothing to commit. Also picks up files an interrupted run wrote."""
    existing = [p for p in paths if (repo / p).exists()]
    if not existing:
        return None
    _git(repo, "add", "-A", "--", *existing)
    if _git(repo, "diff", "--cached", "--quiet", check=False).returncode == 0:
        return None
    _git(repo, "commit", "-q", "-m", message)
    return _git(repo, "rev-parse", "HEAD").stdout.strip()


def pending(repo: Path) -> bool:
    return bool(_git(repo, "status", "--porcelain", "--", "sessions", check=False).stdout.strip())
