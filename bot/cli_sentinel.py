"""`aistack hooks …` and `aistack sentinel …`: install the Claude Code hooks, inspect and replay decisions."""

from __future__ import annotations

import getpass
import json
import os
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer

from bot.cli_common import fail as _fail
from bot.cli_common import runtime as _runtime
from bot.cli_common import settings as _settings
from services.sentinel.model import ToolCall
from services.settings import Settings

hooks_app = typer.Typer(help="Claude Code hooks: install or remove SENTINEL.", no_args_is_help=True)
sentinel_app = typer.Typer(help="SENTINEL: explain, verify the audit chain, replay, check policy, approve.",
                           no_args_is_help=True)

# How an audit line's subject maps back onto a tool's input, for replay.
_SUBJECT_FIELD = {"Bash": "command", "Read": "file_path", "Write": "file_path", "Edit": "file_path",
                  "MultiEdit": "file_path", "NotebookEdit": "notebook_path", "Grep": "path", "Glob": "path",
                  "WebFetch": "url"}


def _settings_file(settings: Path | None, project: Path | None) -> Path:
    from services.sentinel import install

    if settings is not None:
        return settings
    if project is not None:
        return install.project_settings_path(project)
    return _settings().claude_home / "settings.json"


SettingsOpt = Annotated[Path | None, typer.Option("--settings", help="settings.json to edit (default "
                                                  "$CLAUDE_HOME/settings.json).")]
ProjectOpt = Annotated[Path | None, typer.Option("--project", help="Edit PROJECT/.claude/settings.json instead.")]


@hooks_app.command("install")
def hooks_install(settings: SettingsOpt = None, project: ProjectOpt = None,
                  timeout: Annotated[int, typer.Option(help="Hook timeout in seconds.")] = 10) -> None:
    """Merge SENTINEL's PreToolUse/PostToolUse hooks into Claude Code's settings (idempotent, backed up)."""
    from services.sentinel import install

    s = _settings()
    try:
        result = install.install(_settings_file(settings, project), timeout=timeout)
    except install.InstallError as exc:
        _fail(str(exc))
    typer.echo(str(result))
    # The hooks read AISTACK_HOME and SENTINEL_AUDIT_DIR from Claude Code's environment, not from .env.
    from services.sentinel import paths

    for var, ours, theirs in (("AISTACK_HOME", s.aistack_home, paths.aistack_home()),
                              ("SENTINEL_AUDIT_DIR", s.sentinel_audit_dir, paths.audit_dir())):
        if Path(theirs) != Path(ours):
            typer.echo(f"note: the hooks will use {var}={theirs} but your settings say {ours}; export {var} "
                       "where Claude Code runs so both agree", err=True)


@hooks_app.command("uninstall")
def hooks_uninstall(settings: SettingsOpt = None, project: ProjectOpt = None) -> None:
    """Remove exactly the hook entries `install` added."""
    from services.sentinel import install

    try:
        typer.echo(str(install.uninstall(_settings_file(settings, project))))
    except install.InstallError as exc:
        _fail(str(exc))


def _policy(s: Settings) -> Any:
    from services.sentinel.policy import PolicyError, load_policy

    user = s.sentinel_policy
    if user is None and (s.aistack_home / "sentinel-policy.toml").is_file():
        user = s.aistack_home / "sentinel-policy.toml"
    try:
        return load_policy(user)
    except PolicyError as exc:
        _fail(str(exc))


@sentinel_app.command()
def explain(command: Annotated[str, typer.Argument(help="A shell command as the agent would run it.")],
            cwd: Annotated[str | None, typer.Option(help="Working directory (default: here).")] = None) -> None:
    """Show how a command is parsed, which rules fire and why."""
    from services.sentinel.judge import explain as explain_call

    call = ToolCall("Bash", {"command": command}, cwd=cwd or os.getcwd())
    typer.echo(explain_call(call, _policy(_settings())))


@sentinel_app.command()
def verify(directory: Annotated[Path | None, typer.Option("--dir", help="Audit directory.")] = None) -> None:
    """Check the audit log's hash chain; report the first modified, deleted or reordered line."""
    from services.sentinel import audit

    result = audit.verify(str(directory or _settings().sentinel_audit_dir))
    typer.echo(str(result))
    raise typer.Exit(0 if result.ok else 1)


@sentinel_app.command()
def replay(log: Annotated[Path, typer.Argument(help="An audit log file (YYYY-MM-DD.jsonl).")]) -> None:
    """Re-judge an old audit log under the current policy and list what would now be decided differently."""
    from services.sentinel.judge import judge

    policy = _policy(_settings())
    if not log.is_file():
        _fail(f"{log} is not a file; pass one of the audit log's YYYY-MM-DD.jsonl files")
    tally: Counter[str] = Counter()
    for n, raw in enumerate(log.read_bytes().splitlines(), 1):
        try:
            ev = json.loads(raw)
        except ValueError:
            tally["unreadable"] += 1
            continue
        if not isinstance(ev, dict) or ev.get("event") != "pre":
            continue
        tool, subject = str(ev.get("tool_name") or ""), ev.get("subject")
        key = _SUBJECT_FIELD.get(tool)
        if key is None or not isinstance(subject, str) or not subject or "[REDACTED" in subject:
            tally["not replayable"] += 1
            continue
        verdict = judge(ToolCall(tool, {key: subject}, cwd=str(ev.get("cwd") or "")), policy)
        old = "warn" if ev.get("decision") == "ask" else str(ev.get("decision"))
        new = "block" if verdict.decision == "approve" else verdict.decision
        if old == new:
            tally["same"] += 1
            continue
        tally["changed"] += 1
        top = verdict.top
        typer.echo(f"line {n}: {old} → {new} [{top.rule_id if top else '-'}] {subject[:100]}")
    typer.echo(", ".join(f"{k}: {v}" for k, v in sorted(tally.items())) or "no pre-tool events in the log")


@sentinel_app.command("check-policy")
def check_policy(path: Annotated[Path | None, typer.Argument(help="Your policy file (default: the one in "
                                                             "force).")] = None) -> None:
    """Validate a policy file; a broken one is named with the rule and the problem."""
    from services.sentinel.policy import check_policy as check

    s = _settings()
    target = path or s.sentinel_policy or (s.aistack_home / "sentinel-policy.toml")
    if path is None and not Path(target).is_file():
        policy = _policy(s)
        typer.echo(f"default policy ok: {len(policy.rules)} rules (no user policy at {target})")
        return
    problems = check(target)
    for p in problems:
        typer.echo(p, err=True)
    if problems:
        raise typer.Exit(2)
    typer.echo(f"{target}: ok")


@sentinel_app.command()
def approve(code: Annotated[str, typer.Argument(help="The code the block message gave the agent.")]) -> None:
    """Allow a blocked call once (as the Telegram button does), when you are at the terminal."""
    from services.sentinel import alerts, approvals
    from services.sentinel.report import state_dirs

    rt = _runtime()
    alert = alerts.by_code(rt.engine, code)
    if alert is None:
        _fail(f"no alert with code {code.upper()}; the bot ingests hook alerts every few seconds, or check the code")
    assert alert is not None
    who = f"cli:{getpass.getuser()}"
    try:
        alert = alerts.decide(rt.engine, alert.id, alerts.ALLOW, who)
    except alerts.DecisionError as exc:
        _fail(str(exc))
    approvals.grant(alert.call_hash, who, ttl=alerts.APPROVAL_TTL.total_seconds(), alert_id=alert.id,
                    directory=state_dirs(rt.settings)[1])
    typer.echo(f"allowed once: [{alert.rule_id}] {alert.subject or ''} — the identical call may run within 15 minutes")
