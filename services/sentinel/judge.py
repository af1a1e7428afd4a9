"""SENTINEL's judge: one tool call in, one verdict out. Stdlib only (runs in the hook on every call).

- Bash: the command is parsed (services.sentinel.shell) and every simple command it would run is checked by every
  enabled rule; the most severe finding wins (ties: the rule listed first in the policy).
- Read / Write / Edit / MultiEdit / NotebookEdit (`file_path`, `notebook_path`), Grep / Glob (`path`, Glob's
  `pattern`), WebFetch `file://` URLs: the path is checked by the path rules.
- MCP tools (`mcp__*`): `command` as shell, `path` / `file_path` as paths, `sql` / `query` as SQL.
- Anything else: allow. Values that are not strings count as absent.
"""

from __future__ import annotations

import os
import posixpath

from services.sentinel.model import Finding, ToolCall, Verdict, worst
from services.sentinel.policy import Policy
from services.sentinel.rules import CLASSES, Ctx, path_of
from services.sentinel.shell import Parse, parse

TYPE_CHECKING = False  # importing typing costs the hook ~3 ms; mypy still sees these names
if TYPE_CHECKING:
    from typing import Any

DEFAULT_TEMP = ("/tmp", "/var/tmp", "$TMPDIR")
_FILE_TOOLS = {"Read": ("file_path",), "Write": ("file_path",), "Edit": ("file_path",), "MultiEdit": ("file_path",),
               "NotebookEdit": ("notebook_path",), "NotebookRead": ("notebook_path",), "Grep": ("path",),
               "Glob": ("path",), "LS": ("path",)}
_WRITE_TOOLS = frozenset({"Write", "Edit", "MultiEdit", "NotebookEdit"})


def _ctx(call: ToolCall) -> Ctx:
    cwd = call.cwd if isinstance(call.cwd, str) and call.cwd.startswith("/") else None
    return Ctx(os.environ.get("HOME"), DEFAULT_TEMP, posixpath.normpath(cwd) if cwd else None)


def _str(tool_input: Any, key: str) -> str | None:
    if not isinstance(tool_input, dict):
        return None
    value = tool_input.get(key)
    return value if isinstance(value, str) and value else None


def _finding(rule: Any, subject: str) -> Finding:
    return Finding(rule.id, rule.severity, rule.reason, rule.alternative, subject[:500])


def _judge_parse(p: Parse, policy: Policy, ctx: Ctx) -> list[Finding]:
    findings: list[Finding] = []
    for rule in policy.active:
        det = CLASSES[rule.cls]
        params = rule.params
        if det.on_parse is not None:
            subject = det.on_parse(p, params, ctx)
            if subject:
                findings.append(_finding(rule, subject))
        if det.on_command is not None:
            for cmd in p.commands:
                subject = det.on_command(cmd, params, ctx)
                if subject:
                    findings.append(_finding(rule, subject))
                    break
    return findings


def _judge_path(path: str, access: str, policy: Policy, ctx: Ctx) -> list[Finding]:
    resolved = path_of(path, ctx.cwd, ctx) or path
    findings = []
    for rule in policy.active:
        det = CLASSES[rule.cls]
        if det.on_path is not None and det.on_path(resolved, access, rule.params, ctx):
            findings.append(_finding(rule, resolved))
    return findings


def _judge_sql(text: str, policy: Policy) -> list[Finding]:
    findings = []
    for rule in policy.active:
        det = CLASSES[rule.cls]
        if det.on_sql is not None and det.on_sql(text, rule.params):
            findings.append(_finding(rule, text[:200]))
    return findings


def _parse_call(command: str, ctx: Ctx) -> Parse:
    env: dict[str, str | None] = {}
    for name in ("HOME", "TMPDIR", "USER", "LOGNAME"):
        value = os.environ.get(name)
        if value:
            env[name] = value
    return parse(command, ctx.cwd, env)


def _findings(call: ToolCall, policy: Policy, ctx: Ctx) -> tuple[list[Finding], Parse | None]:
    name = call.tool_name if isinstance(call.tool_name, str) else ""
    ti = call.tool_input if isinstance(call.tool_input, dict) else {}
    findings: list[Finding] = []
    parsed: Parse | None = None
    if name == "Bash" or name.startswith("mcp__"):
        command = _str(ti, "command")
        if command:
            parsed = _parse_call(command, ctx)
            findings.extend(_judge_parse(parsed, policy, ctx))
    if name in _FILE_TOOLS:
        access = "write" if name in _WRITE_TOOLS else "read"
        for key in _FILE_TOOLS[name]:
            path = _str(ti, key)
            if path:
                findings.extend(_judge_path(path, access, policy, ctx))
        if name == "Glob":
            pattern = _str(ti, "pattern")
            if pattern:
                base = _str(ti, "path")
                full = pattern if pattern.startswith(("/", "~")) or not base else base.rstrip("/") + "/" + pattern
                findings.extend(_judge_path(full, "read", policy, ctx))
        if name == "Grep":
            glob = _str(ti, "glob")
            if glob and "/" in glob:
                findings.extend(_judge_path(glob, "read", policy, ctx))
    elif name == "WebFetch":
        url = _str(ti, "url")
        if url and url.lower().startswith("file:"):
            path = url[5:]
            if path.startswith("//"):
                path = path[2:]
                path = path[path.find("/"):] if "/" in path else "/"
            from urllib.parse import unquote

            findings.extend(_judge_path(unquote(path), "read", policy, ctx))
    elif name.startswith("mcp__"):
        for key in ("path", "file_path", "filename", "file", "notebook_path"):
            path = _str(ti, key)
            if path:
                findings.extend(_judge_path(path, "read", policy, ctx))
        for key in ("sql", "query"):
            text = _str(ti, key)
            if text:
                findings.extend(_judge_sql(text, policy))
    return findings, parsed


def judge(call: ToolCall, policy: Policy) -> Verdict:
    """Most severe finding across every command in the call wins; no finding means allow."""
    ctx = _ctx(call)
    findings, _ = _findings(call, policy, ctx)
    return worst(findings)


def explain(call: ToolCall, policy: Policy) -> str:
    """Human-readable account of how the call was parsed and which rules fired (for `aistack sentinel explain`)."""
    ctx = _ctx(call)
    findings, parsed = _findings(call, policy, ctx)
    verdict = worst(findings)
    lines = [f"tool: {call.tool_name}  cwd: {call.cwd or '?'}"]
    if parsed is not None:
        if not parsed.commands:
            lines.append("commands: none")
        for n, cmd in enumerate(parsed.commands, 1):
            argv = " ".join(repr(a.text) + ("?" if a.unresolved else "") for a in cmd.args)
            lines.append(f"{n}. [{cmd.program or '-'}] {argv}")
            lines.append(f"   cwd: {cmd.cwd or 'unknown'}  via: {' > '.join(cmd.via) or 'top level'}")
            if cmd.redirects:
                lines.append("   redirects: " + ", ".join(str(r) for r in cmd.redirects))
            if cmd.stdin:
                body = cmd.stdin_text
                summary = "" if body is None else f" {len(body)} chars: {body[:60]!r}"
                lines.append(f"   stdin: {cmd.stdin}{summary}")
            if cmd.upstream:
                lines.append("   upstream: " + " | ".join(u.program for u in cmd.upstream))
            if cmd.env:
                lines.append("   env: " + " ".join(f"{k}={v if v is not None else '?'}" for k, v in cmd.env.items()))
            if cmd.exec_sink:
                lines.append("   output executed as code")
            if cmd.unknown_program:
                lines.append("   program name unknown")
            if cmd.actions:
                lines.append("   code: " + ", ".join(f"{k} {v}" if v else k for k, v in cmd.actions))
        for problem in parsed.problems:
            lines.append(f"problem: {problem}")
        for name in parsed.forkbombs:
            lines.append(f"fork bomb: {name}")
    if not findings:
        lines.append("findings: none")
    for f in findings:
        lines.append(f"finding: [{f.rule_id}] {f.severity}: {f.reason} (subject: {f.subject})")
        if f.alternative:
            lines.append(f"   alternative: {f.alternative}")
    top = verdict.top
    lines.append(f"decision: {verdict.decision}" + (f" [{top.rule_id}]" if top else ""))
    return "\n".join(lines)
