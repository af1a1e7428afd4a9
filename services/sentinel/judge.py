"""SENTINEL's judge: one tool call in, one verdict out. Stdlib only (runs in the hook on every call).

(Early version: final signatures; the rules grow in rules.py.)
"""

from __future__ import annotations

from services.sentinel.model import ToolCall, Verdict, worst
from services.sentinel.policy import Policy


def judge(call: ToolCall, policy: Policy) -> Verdict:
    """Most severe finding across every command in the call wins; no finding means allow."""
    return worst([])


def explain(call: ToolCall, policy: Policy) -> str:
    """Human-readable account of how the call was parsed and which rules fired (for `aistack sentinel explain`)."""
    v = judge(call, policy)
    return f"decision: {v.decision}"
