"""The shapes SENTINEL passes around. Stdlib only (imported by the hooks).

Plain classes with __slots__, not dataclasses: `dataclasses` pulls in `inspect`, `ast` and `dis`,
about 15 ms of import time on every tool call.
"""

from __future__ import annotations

import hashlib
import json

TYPE_CHECKING = False  # mypy treats this like typing.TYPE_CHECKING; importing typing costs the hook ~3 ms
if TYPE_CHECKING:
    from typing import Any

# Most severe first. `approve` waits for the admin (or blocks when no decision arrives).
SEVERITIES = ("block", "approve", "warn", "allow")
RANK = {s: i for i, s in enumerate(reversed(SEVERITIES))}  # allow 0 … block 3


class _Value:
    """Equality, repr and immutability by __slots__, which is all the dataclasses here were used for."""

    __slots__: tuple[str, ...] = ()

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and all(getattr(self, s) == getattr(other, s) for s in self.__slots__)

    def __hash__(self) -> int:
        return hash(tuple(repr(getattr(self, s)) for s in self.__slots__))

    def __repr__(self) -> str:
        fields = ", ".join(f"{s}={getattr(self, s)!r}" for s in self.__slots__)
        return f"{type(self).__name__}({fields})"

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def _init(self, **values: object) -> None:
        for k, v in values.items():
            object.__setattr__(self, k, v)


class ToolCall(_Value):
    __slots__ = ("cwd", "permission_mode", "session_id", "tool_input", "tool_name", "tool_use_id")
    tool_name: str
    tool_input: dict[str, Any]
    cwd: str
    session_id: str
    tool_use_id: str
    permission_mode: str

    def __init__(self, tool_name: str, tool_input: dict[str, Any], cwd: str = "", session_id: str = "",
                 tool_use_id: str = "", permission_mode: str = "default") -> None:
        self._init(tool_name=tool_name, tool_input=tool_input, cwd=cwd, session_id=session_id,
                   tool_use_id=tool_use_id, permission_mode=permission_mode)

    def call_hash(self) -> str:
        """Hash of the exact normalised call: an approval is bound to it, any change needs a new one."""
        canon = json.dumps({"tool": self.tool_name, "input": self.tool_input, "cwd": self.cwd,
                            "session": self.session_id}, sort_keys=True, separators=(",", ":"),
                           ensure_ascii=False)
        return hashlib.sha256(canon.encode()).hexdigest()


class Finding(_Value):
    __slots__ = ("alternative", "reason", "rule_id", "severity", "subject")
    rule_id: str
    severity: str  # one of SEVERITIES
    reason: str
    alternative: str
    subject: str  # the command or path that fired the rule

    def __init__(self, rule_id: str, severity: str, reason: str, alternative: str = "", subject: str = "") -> None:
        self._init(rule_id=rule_id, severity=severity, reason=reason, alternative=alternative, subject=subject)


class Verdict(_Value):
    __slots__ = ("approvable", "decision", "findings")
    decision: str  # one of SEVERITIES: the most severe finding, or allow
    findings: tuple[Finding, ...]
    approvable: bool  # False for fail-closed blocks (bad input, internal error): never approvable

    def __init__(self, decision: str, findings: tuple[Finding, ...] = (), approvable: bool = True) -> None:
        self._init(decision=decision, findings=tuple(findings), approvable=approvable)

    @property
    def top(self) -> Finding | None:
        return max(self.findings, key=lambda f: RANK[f.severity], default=None)


def worst(findings: list[Finding] | tuple[Finding, ...]) -> Verdict:
    fs = tuple(findings)
    top = max(fs, key=lambda f: RANK[f.severity], default=None)
    return Verdict(top.severity if top else "allow", fs)
