"""OpenAI Codex CLI importer: `$CODEX_HOME/sessions/YYYY/MM/DD/rollout-<time>-<uuid>.jsonl` (and the flat
`$CODEX_HOME/archived_sessions/`, where `codex` moves archived rollouts; the same uuid keeps the same session).

Every line is `{timestamp, type, payload}`; rollouts written before Codex wrapped them (a bare meta line, then
bare response items) are read too. Rules:
- Messages come only from `response_item`s; one message per item, id `L<line>` (Codex has no ids of its own, and
  absolute line numbers are stable because rollouts are append-only). `message` items keep their role, except
  `developer`/`system` items and user items that are only injected context (`<environment_context>`,
  `<user_instructions>`, AGENTS.md): those are boilerplate. `reasoning` becomes an assistant thinking block from
  its summary text (the encrypted content is opaque). `function_call`, `custom_tool_call`, `local_shell_call` and
  `web_search_call` become assistant tool_use blocks (function arguments JSON-decoded); `*_output` items become
  role "tool" tool_result blocks with the same `call_id`. `event_msg` user/agent messages and reasoning repeat the
  response items and are ignored.
- Calls: each `event_msg` `token_count` whose `info` is set and whose `total_token_usage` differs from the previous
  one is one call, from its `last_token_usage`. OpenAI counts cached input inside input and reasoning inside
  output, so input_tokens = input - cached, cache_read = cached, output as written, cache_creation = 0.
- Incremental reads: the session meta (first line), the current model (last `turn_context`) and the previous
  `total_token_usage` (last `token_count` with info) are recovered from the already-imported prefix by a byte
  search and three small parses, so a repeated token event just after the offset is still skipped.
- Denied tool calls: outputs Codex writes when the user refuses an approval ("exec command rejected by user",
  "patch rejected by user").
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ..model import Call, Message, Session, SourceFile, Usage
from . import Importer, ImportFailed, Parsed, Report, Unit
from .claude_code import recover_line

PLATFORM = "codex"
VERSION = "1"
TITLE_LEN = 80
UUID_IN_NAME = re.compile(r"([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\.jsonl$")
BOILERPLATE = ("<environment_context>", "<user_instructions>", "# AGENTS.md instructions", "<INSTRUCTIONS>")
DENIALS = ("exec command rejected by user", "patch rejected by user")
ITEM_TYPES = frozenset({"message", "reasoning", "function_call", "function_call_output", "custom_tool_call",
                        "custom_tool_call_output", "local_shell_call", "web_search_call"})
CALL_TYPES = frozenset({"function_call", "custom_tool_call", "local_shell_call", "web_search_call"})
OUTPUT_TYPES = frozenset({"function_call_output", "custom_tool_call_output"})


def discover(root: Path) -> list[Unit]:
    units: list[Unit] = []
    for folder in ("sessions", "archived_sessions"):
        base = Path(root) / folder
        if base.is_dir():
            for path in sorted(base.rglob("rollout-*.jsonl")):
                m = UUID_IN_NAME.search(path.name)
                units.append(Unit(platform=PLATFORM, paths=[path], native_id=m.group(1).lower() if m else None))
    return units


@dataclass
class _State:
    """What a read knows so far: session facts, the current model, the last cumulative token usage."""

    report: Report
    native_id: str | None = None
    cwd: str | None = None
    branch: str | None = None
    remote: str | None = None
    model: str | None = None
    last_total: Any = None
    started: str | None = None
    ended: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    messages: list[Message] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)

    def meta(self, p: dict[str, Any]) -> None:
        self.native_id = self.native_id or p.get("id")
        self.cwd = self.cwd or p.get("cwd")
        git = _dict(p.get("git"))
        self.branch = self.branch or git.get("branch")
        self.remote = self.remote or git.get("repository_url")
        for key in ("cli_version", "originator", "model_provider"):
            if p.get(key):
                self.extra.setdefault(key, p[key])
        if git.get("commit_hash"):
            self.extra.setdefault("git_commit", git["commit_hash"])

    def turn(self, p: dict[str, Any]) -> None:
        self.model = p.get("model") or self.model
        self.cwd = self.cwd or p.get("cwd")

    def tokens(self, p: dict[str, Any], ts: str | None) -> None:
        info = p.get("info")
        if not isinstance(info, dict):  # the first event of a turn has no usage yet
            return
        total = info.get("total_token_usage")
        if total is not None and total == self.last_total:  # Codex repeats the event when nothing was billed
            return
        self.last_total = total
        last = info.get("last_token_usage")
        if isinstance(last, dict):
            self.calls.append(Call(time=ts, model=self.model, usage=_usage(last)))


def _usage(u: dict[str, Any]) -> Usage:
    cached = int(u.get("cached_input_tokens") or 0)
    return Usage(input_tokens=int(u.get("input_tokens") or 0) - cached, output_tokens=int(u.get("output_tokens") or 0),
                 cache_creation_input_tokens=0, cache_read_input_tokens=cached)


# --- reading -----------------------------------------------------------------------------------------------------


def parse(unit: Unit, report: Report, offsets: dict[str, int]) -> Parsed:
    path = unit.paths[0]
    try:
        data = path.read_bytes()  # rollouts are small (a few MB at most); one read gives prefix and tail
    except OSError as e:
        raise ImportFailed(f"Cannot read Codex rollout {path}: {e.strerror or e}.") from e
    start = offsets.get(str(path), 0)
    if start > len(data):  # the file was replaced by a shorter one: read it again from the top
        start = 0
    end = data.rfind(b"\n") + 1
    end = max(end, start)
    state = _State(report)
    prefix = data[:start]
    if start:
        _restore(state, prefix)
    first_line = prefix.count(b"\n") + 1
    _scan(state, data[start:end], first_line, path)
    source = SourceFile(path=str(path), sha256=hashlib.sha256(memoryview(data)[:end]).hexdigest(), size=end)
    session = Session(platform=PLATFORM, native_id=state.native_id or unit.native_id or path.stem,
                      messages=state.messages, calls=state.calls, started=state.started, ended=state.ended,
                      cwd=state.cwd, git_branch=state.branch, git_remote=state.remote, sources=[source],
                      importer_version=VERSION, extra=state.extra, denied_tool_calls=_count_denied(state.messages))
    if not start:  # a tail's first prompt is not the session's title
        session.title = _title(state.messages)
    return Parsed(sessions=[session], offsets={str(path): end})


def _restore(state: _State, prefix: bytes) -> None:
    """Session facts, current model and last token total from the imported prefix, without parsing all of it."""
    head = _load(prefix[: prefix.find(b"\n")])
    if head and head.get("type") == "session_meta" and isinstance(head.get("payload"), dict):
        state.meta(head["payload"])
    elif head and "payload" not in head and "id" in head:  # the bare meta line of an old rollout
        state.meta(head)
    turn = _last_line_with(prefix, b'"type":"turn_context"', lambda d: isinstance(d.get("payload"), dict))
    if turn:
        state.turn(turn["payload"])
    count = _last_line_with(prefix, b'"type":"token_count"', _has_token_info)
    if count:
        state.last_total = count["payload"]["info"].get("total_token_usage")


def _has_token_info(d: dict[str, Any]) -> bool:
    p = d.get("payload")
    return isinstance(p, dict) and isinstance(p.get("info"), dict)


def _last_line_with(data: bytes, needle: bytes, accept: Any) -> dict[str, Any] | None:
    """The last line holding `needle` that parses and passes `accept`. The needle cannot match inside a JSON string
    (its quotes would be escaped), so only real keys are found."""
    stop = len(data)
    while True:
        i = data.rfind(needle, 0, stop)
        if i < 0:
            return None
        lo = data.rfind(b"\n", 0, i) + 1
        hi = data.find(b"\n", i)
        d = _load(data[lo : hi if hi >= 0 else len(data)])
        if d is not None and accept(d):
            return d
        stop = lo


def _load(raw: bytes) -> dict[str, Any] | None:
    try:
        d = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return d if isinstance(d, dict) else None


def _scan(state: _State, body: bytes, first_line: int, path: Path) -> None:
    loads = orjson.loads
    for lineno, raw in enumerate(body.split(b"\n"), first_line):
        if not raw:
            continue
        try:
            d = loads(raw)
        except orjson.JSONDecodeError as e:
            d = recover_line(raw, path, lineno, state.report, e)
            if d is None:
                continue
        if not isinstance(d, dict):
            state.report.bad(path, lineno, "not a JSON object")
            continue
        _take(state, d, lineno)


def _take(state: _State, d: dict[str, Any], lineno: int) -> None:
    ts = d.get("timestamp")
    if isinstance(ts, str):
        if state.started is None or ts < state.started:
            state.started = ts
        if state.ended is None or ts > state.ended:
            state.ended = ts
    kind, p = d.get("type"), d.get("payload")
    if not isinstance(p, dict):  # a rollout from before the {timestamp, type, payload} envelope
        if kind in ITEM_TYPES:
            kind, p = "response_item", d
        elif lineno == 1 and "id" in d:
            kind, p = "session_meta", d
        else:
            return
    if kind == "session_meta":
        state.meta(p)
    elif kind == "turn_context":
        state.turn(p)
    elif kind == "response_item":
        _item(state, p, lineno, ts if isinstance(ts, str) else None)
    elif kind == "event_msg" and p.get("type") == "token_count":
        state.tokens(p, ts if isinstance(ts, str) else None)


# --- messages ----------------------------------------------------------------------------------------------------


def _item(state: _State, p: dict[str, Any], lineno: int, ts: str | None) -> None:
    t = p.get("type")
    role = "assistant"
    if t == "message":
        role = str(p.get("role") or "")
        blocks = _message_blocks(p.get("content"))
        if role not in ("user", "assistant") or not blocks or (role == "user" and _boilerplate(blocks)):
            return
    elif t == "reasoning":
        text = "\n".join(s["text"] for s in p.get("summary") or () if isinstance(s, dict) and s.get("text"))
        if not text:
            return
        blocks = [{"type": "thinking", "text": text}]
    elif t in CALL_TYPES:
        blocks = [_tool_use(p, t, lineno)]
    elif t in OUTPUT_TYPES:
        role = "tool"
        content, is_error = _output(p.get("output"))
        blocks = [{"type": "tool_result", "tool_use_id": p.get("call_id"), "content": content, "is_error": is_error}]
    else:
        return
    parent = state.messages[-1].id if state.messages else None
    state.messages.append(Message(id=f"L{lineno}", role=role, content=blocks, time=ts,
                                  model=state.model if role == "assistant" else None, parent=parent))


def _message_blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    out: list[dict[str, Any]] = []
    for b in content if isinstance(content, list) else ():
        if not isinstance(b, dict):
            continue
        t = b.get("type")
        if t in ("input_text", "output_text", "text") and b.get("text"):
            out.append({"type": "text", "text": b["text"]})
        elif t == "input_image":
            out.append({"type": "attachment", "ref": _image_ref(b.get("image_url")), "name": None, "kind": "image"})
    return out


def _image_ref(url: Any) -> str:
    """A data: URL is stored by its hash (the archive keeps references, not inline payloads)."""
    if isinstance(url, str) and url.startswith("data:"):
        return "sha256:" + hashlib.sha256(url.encode()).hexdigest()
    return str(url or "")


def _boilerplate(blocks: list[dict[str, Any]]) -> bool:
    texts = [b["text"].lstrip() for b in blocks if b["type"] == "text"]
    return bool(texts) and all(t.startswith(BOILERPLATE) for t in texts)


def _tool_use(p: dict[str, Any], t: str, lineno: int) -> dict[str, Any]:
    call_id = p.get("call_id") or p.get("id") or f"L{lineno}"
    if t == "function_call":
        name, args = p.get("name"), p.get("arguments")
        if isinstance(args, str):
            with contextlib.suppress(orjson.JSONDecodeError):  # not JSON: kept as the raw string the model wrote
                args = orjson.loads(args)
        return {"type": "tool_use", "id": call_id, "name": name, "input": args}
    if t == "custom_tool_call":
        return {"type": "tool_use", "id": call_id, "name": p.get("name"), "input": p.get("input")}
    name = "local_shell" if t == "local_shell_call" else "web_search"
    return {"type": "tool_use", "id": call_id, "name": name, "input": p.get("action")}


def _output(o: Any) -> tuple[str, bool]:
    """Tool output text and error flag. Shell outputs are JSON `{"output", "metadata": {"exit_code"}}` in a string;
    newer payloads are `{"content", "success"}` or a list of content items."""
    if isinstance(o, dict):
        text, err = _output(o.get("content"))
        return text, err or o.get("success") is False
    if isinstance(o, list):
        return "\n".join(str(x.get("text")) for x in o if isinstance(x, dict) and x.get("text")), False
    if not isinstance(o, str):
        return ("" if o is None else str(o)), False
    if o.startswith("{"):
        try:
            j = orjson.loads(o)
        except orjson.JSONDecodeError:
            return o, False
        if isinstance(j, dict) and isinstance(j.get("output"), str):
            meta = _dict(j.get("metadata"))
            return j["output"], meta.get("exit_code") not in (0, None)
    return o, False


def _title(messages: list[Message]) -> str | None:
    for m in messages:
        if m.role == "user":
            text = " ".join(" ".join(b["text"] for b in m.content if b["type"] == "text").split())
            if text:
                return text[:TITLE_LEN]
    return None


def _count_denied(messages: list[Message]) -> int:
    return sum(1 for m in messages if m.role == "tool" for b in m.content
               if b["type"] == "tool_result" and b["content"].startswith(DENIALS))


def _dict(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


IMPORTER = Importer(platform=PLATFORM, version=VERSION, discover=discover, parse=parse, incremental=True)
