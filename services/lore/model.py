"""LORE's canonical session: what every importer produces and what the archive writes as `lore.session/v1` YAML.

Messages are shaped like the Open Message Format (a role plus a list of content blocks). Usage lives apart from
messages, in `calls`: one entry per billed model call after each platform's deduplication, because a call is
what costs money and what `aistack lore usage` adds up, and a message may be written over several lines.

Content blocks (plain dicts, exactly what the YAML holds):
    {"type": "text", "text": str}
    {"type": "thinking", "text": str}
    {"type": "tool_use", "id": str, "name": str, "input": Any}
    {"type": "tool_result", "tool_use_id": str, "content": str, "is_error": bool}
    {"type": "attachment", "ref": str, "name": str | None, "kind": "image" | "file"}

Unknown numbers are None, never 0: a Gemini export has no token counts, and "0 tokens" would be a lie.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SCHEMA = "lore.session/v1"
USAGE_KEYS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
ROLES = ("user", "assistant", "system", "tool")
STATES = ("hypothesis", "codified", "validated", "promoted")


@dataclass
class Usage:
    """Token counts in Anthropic's (and LiteLLM's) names. `input_tokens` excludes cache reads and writes."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None

    def total(self) -> int:
        return sum(v or 0 for v in self.as_tuple())

    def as_tuple(self) -> tuple[int | None, int | None, int | None, int | None]:
        return (self.input_tokens, self.output_tokens, self.cache_creation_input_tokens, self.cache_read_input_tokens)

    def known(self) -> bool:
        return any(v is not None for v in self.as_tuple())

    def plus(self, other: Usage) -> Usage:
        """Sum field by field; a field stays None only when it is None on both sides."""
        a, b = self.as_tuple(), other.as_tuple()
        return Usage(*(None if x is None and y is None else (x or 0) + (y or 0) for x, y in zip(a, b, strict=True)))

    def to_dict(self) -> dict[str, int | None]:
        return dict(zip(USAGE_KEYS, self.as_tuple(), strict=True))

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Usage:
        d = d or {}
        return cls(*(d.get(k) for k in USAGE_KEYS))


@dataclass
class Call:
    """One billed model call, after deduplication. `message_id` links it to the message it produced, if any."""

    time: str | None
    model: str | None
    usage: Usage
    message_id: str | None = None
    thread: str = "main"
    request_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"time": self.time, "model": self.model, "thread": self.thread,
                             "message_id": self.message_id, "request_id": self.request_id}
        d.update(self.usage.to_dict())
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Call:
        return cls(time=d.get("time"), model=d.get("model"), usage=Usage.from_dict(d),
                   message_id=d.get("message_id"), thread=d.get("thread") or "main", request_id=d.get("request_id"))


@dataclass
class Message:
    """One logical message. `id` is stable across re-imports (the platform's own id where it has one).

    `thread`: "main" (the visible conversation), "sidechain:<agent id>" (a subagent's transcript),
    "alternate:<n>" (a branch the user abandoned, or a regenerated draft): never mixed into "main".
    """

    id: str
    role: str
    content: list[dict[str, Any]]
    time: str | None = None
    model: str | None = None
    thread: str = "main"
    parent: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def text(self) -> str:
        """The message's searchable text: text, thinking, tool names and inputs, tool results."""
        parts: list[str] = []
        for b in self.content:
            t = b.get("type")
            if t in ("text", "thinking"):
                parts.append(str(b.get("text") or ""))
            elif t == "tool_use":
                parts.append(f"{b.get('name', '')} {b.get('input')!s}")
            elif t == "tool_result":
                parts.append(str(b.get("content") or ""))
            elif t == "attachment":
                parts.append(str(b.get("name") or b.get("ref") or ""))
        return "\n".join(p for p in parts if p)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "role": self.role, "time": self.time}
        if self.model:
            d["model"] = self.model
        d["thread"] = self.thread
        if self.parent:
            d["parent"] = self.parent
        if self.meta:
            d["meta"] = self.meta
        d["content"] = self.content
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Message:
        return cls(id=str(d["id"]), role=d["role"], content=list(d.get("content") or []), time=d.get("time"),
                   model=d.get("model"), thread=d.get("thread") or "main", parent=d.get("parent"),
                   meta=dict(d.get("meta") or {}))


@dataclass
class SourceFile:
    path: str
    sha256: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "size": self.size}


@dataclass
class Session:
    """What an importer returns for one session. The archive adds client, redaction, cost and knowledge state."""

    platform: str
    native_id: str
    messages: list[Message] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    title: str | None = None
    started: str | None = None  # ISO 8601, UTC, "Z"
    ended: str | None = None
    cwd: str | None = None
    git_branch: str | None = None
    git_remote: str | None = None
    sources: list[SourceFile] = field(default_factory=list)
    importer_version: str = ""
    denied_tool_calls: int = 0  # tool calls the transcript itself shows as refused by a permission check
    extra: dict[str, Any] = field(default_factory=dict)  # platform facts worth keeping (CLI version, gem, ...)

    @property
    def key(self) -> str:
        return f"{self.platform}:{self.native_id}"

    def models(self) -> list[str]:
        seen: dict[str, None] = {}
        for c in self.calls:
            if c.model:
                seen.setdefault(c.model, None)
        for m in self.messages:
            if m.model:
                seen.setdefault(m.model, None)
        return list(seen)
