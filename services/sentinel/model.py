"""The shapes SENTINEL passes around. Stdlib only (imported by the hooks)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

# Most severe first. `approve` waits for the admin (or blocks when no decision arrives).
SEVERITIES = ("block", "approve", "warn", "allow")
RANK = {s: i for i, s in enumerate(reversed(SEVERITIES))}  # allow 0 … block 3


@dataclass(frozen=True)
class ToolCall:
    tool_name: str
    tool_input: dict[str, Any]
    cwd: str = ""
    session_id: str = ""
    tool_use_id: str = ""
    permission_mode: str = "default"

    def call_hash(self) -> str:
        """Hash of the exact normalised call: an approval is bound to it, any change needs a new one."""
        canon = json.dumps({"tool": self.tool_name, "input": self.tool_input, "cwd": self.cwd,
                            "session": self.session_id}, sort_keys=True, separators=(",", ":"),
                           ensure_ascii=False)
        return hashlib.sha256(canon.encode()).hexdigest()


@dataclass(frozen=True)
class Finding:
    rule_id: str
    severity: str  # one of SEVERITIES
    reason: str
    alternative: str = ""
    subject: str = ""  # the command or path that fired the rule


@dataclass(frozen=True)
class Verdict:
    decision: str  # one of SEVERITIES: the most severe finding, or allow
    findings: tuple[Finding, ...] = field(default_factory=tuple)
    approvable: bool = True  # False for fail-closed blocks (bad input, internal error): never approvable

    @property
    def top(self) -> Finding | None:
        return max(self.findings, key=lambda f: RANK[f.severity], default=None)


def worst(findings: list[Finding] | tuple[Finding, ...]) -> Verdict:
    fs = tuple(findings)
    top = max(fs, key=lambda f: RANK[f.severity], default=None)
    return Verdict(top.severity if top else "allow", fs)
