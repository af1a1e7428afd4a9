"""`aistack doctor`: what is fine and what to fix, one row per check. No Telegram import: plain HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from services.settings import Settings
from services.store import db


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | warn | fail
    detail: str
    fix: str = ""


def check_settings(s: Settings) -> Check:
    if not s.telegram_bot_token:
        return Check("settings", "warn", "TELEGRAM_BOT_TOKEN not set: `aistack run` starts the offline demo",
                     "set TELEGRAM_BOT_TOKEN in .env to run against Telegram")
    if not s.admin_chat_id:
        return Check("settings", "fail", "ADMIN_CHAT_ID is empty: the bot would refuse everyone",
                     "set ADMIN_CHAT_ID to your chat id (message @userinfobot to learn it)")
    return Check("settings", "ok", f"token set, {len(s.admin_chat_id)} admin chat(s), TZ {s.tz}")


def check_database(s: Settings) -> Check:
    try:
        current = db.current_revision(s.db_url)
        head = db.head_revision()
    except db.DatabaseError as exc:
        return Check("database", "fail", str(exc), "check DATABASE_URL and that the server is running")
    where = s.db_url.split("@")[-1] if "@" in s.db_url else s.db_url
    if current != head:
        return Check("database", "warn", f"{where}: schema {current or 'empty'}, code expects {head}",
                     "run `aistack db upgrade` (the bot also upgrades at start)")
    return Check("database", "ok", f"{where}: schema at {head}")


def check_bot_api(s: Settings, timeout: float = 5.0) -> Check:
    if not s.telegram_bot_token:
        return Check("bot api", "warn", "skipped: no token", "set TELEGRAM_BOT_TOKEN")
    url = f"{s.bot_api_base()}{s.telegram_bot_token}/getMe"
    shown = s.telegram_base_url
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            me = json.loads(resp.read())["result"]
        return Check("bot api", "ok", f"{shown} answers: @{me.get('username')}")
    except urllib.error.HTTPError as exc:
        fix = "the token was refused: copy it again from @BotFather" if exc.code in (401, 404) else ""
        return Check("bot api", "fail", f"{shown} answered HTTP {exc.code}", fix)
    except (OSError, ValueError, KeyError) as exc:
        reason = getattr(exc, "reason", exc)
        return Check("bot api", "fail", f"{shown} unreachable: {reason}",
                     "check the network or TELEGRAM_BASE_URL")


def _folder(name: str, path: Path, pattern: str, what: str) -> Check:
    if not path.is_dir():
        return Check(name, "warn", f"{path} not found", f"set {name.upper()} if that tool keeps its data elsewhere")
    n = sum(1 for _ in path.glob(pattern))
    return Check(name, "ok", f"{path}: {n} {what}")


def check_claude(s: Settings) -> Check:
    return _folder("claude_home", s.claude_home, "projects/*", "Claude Code project folder(s)")


def check_codex(s: Settings) -> Check:
    return _folder("codex_home", s.codex_home, "sessions/*/*/*", "Codex session day folder(s)")


CLAUDE_DEFAULT_CLEANUP_DAYS = 30  # Claude Code deletes transcripts older than this unless settings say otherwise
RETENTION_OK_DAYS = 365
RETENTION_SUGGESTED = 36500


def check_claude_retention(s: Settings) -> Check:
    """Claude Code deletes its transcripts after `cleanupPeriodDays` (default 30): LORE must import before that."""
    settings_file = s.claude_home / "settings.json"
    fix = (f'set "cleanupPeriodDays": {RETENTION_SUGGESTED} in {settings_file}, and import more often than that '
           f"(the bot imports daily at LORE_IMPORT_TIME {s.lore_import_time:%H:%M})")
    try:
        data = json.loads(settings_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        data = {}
    except (OSError, ValueError) as exc:
        return Check("claude retention", "warn", f"{settings_file} unreadable ({exc.__class__.__name__}): Claude Code "
                     f"may be deleting transcripts after {CLAUDE_DEFAULT_CLEANUP_DAYS} days", fix)
    days = data.get("cleanupPeriodDays") if isinstance(data, dict) else None
    if days is None:
        return Check("claude retention", "warn",
                     f"cleanupPeriodDays not set: Claude Code deletes transcripts after "
                     f"{CLAUDE_DEFAULT_CLEANUP_DAYS} days (its default)", fix)
    if isinstance(days, bool) or not isinstance(days, int | float):
        return Check("claude retention", "warn", f"cleanupPeriodDays is {days!r}, not a number of days", fix)
    if days <= 0:
        return Check("claude retention", "warn", f"cleanupPeriodDays is {days:g}: Claude Code may keep no "
                     "transcripts at all, so LORE has nothing to import", fix)
    if days < RETENTION_OK_DAYS:
        return Check("claude retention", "warn",
                     f"cleanupPeriodDays is {days:g}: Claude Code deletes transcripts after {days:g} days", fix)
    return Check("claude retention", "ok", f"cleanupPeriodDays is {days:g}: transcripts are kept {days:g} days")


KNOWN_BAD = {"session_id": "aistack-doctor", "transcript_path": "", "cwd": "/", "permission_mode": "default",
             "hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_use_id": "doctor",
             "tool_input": {"command": "rm -rf /"}}


def _installed_pre_hook(settings_file: Path) -> str | None:
    try:
        data = json.loads(settings_file.read_text(encoding="utf-8"))
        groups = data.get("hooks", {}).get("PreToolUse", [])
        for group in groups:
            for hook in group.get("hooks", []):
                if "pre_tool_use.py" in str(hook.get("command", "")):
                    return str(hook["command"])
    except (OSError, ValueError, AttributeError, TypeError):
        return None
    return None


def check_hooks(s: Settings) -> Check:
    """Replay a known-bad call through the hook Claude Code would run, and see it blocked."""
    settings_file = s.claude_home / "settings.json"
    command = _installed_pre_hook(settings_file)
    if command is None:
        return Check("sentinel hook", "warn", f"not installed in {settings_file}", "run `aistack hooks install`")
    with tempfile.TemporaryDirectory() as tmp:  # keep the test call out of the real audit log and alerts
        # SENTINEL_DAEMON=off: judged by the hook process itself, no judge daemon left behind in a deleted home.
        env = {**os.environ, "AISTACK_HOME": tmp, "SENTINEL_AUDIT_DIR": tmp, "SENTINEL_DAEMON": "off"}
        try:
            out = subprocess.run(["/bin/sh", "-c", command], input=json.dumps(KNOWN_BAD), env=env,
                                 capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return Check("sentinel hook", "fail", f"the installed hook did not run: {exc}",
                         "run `aistack hooks install` again")
    if out.returncode == 2 and "SENTINEL blocked" in out.stderr:
        return Check("sentinel hook", "ok", "installed; blocked a known-bad call (rm -rf /)")
    return Check("sentinel hook", "fail", f"the installed hook let `rm -rf /` through (exit {out.returncode})",
                 "run `aistack hooks install` again and `aistack sentinel check-policy`")


def check_health(s: Settings) -> Check:
    """The wsl-audit thresholds load (a bad file makes the bot's watch skip every tick), and whether the bot watches."""
    from services.health import thresholds  # stdlib only, imported when doctor runs

    try:
        t = thresholds.load()
    except thresholds.ThresholdsError as exc:
        return Check("host health", "fail", str(exc), "fix that file; `wsl-audit --explain` prints the values in force")
    watch = (f"the bot checks every {s.health_watch_interval:g} s" if s.health_watch_interval
             else "the bot does not watch (HEALTH_WATCH_INTERVAL=0)")
    return Check("host health", "ok", f"thresholds from {', '.join(t.sources)}; {watch}")


CHECKS: list[Callable[[Settings], Check]] = [check_settings, check_database, check_bot_api, check_claude,
                                             check_claude_retention, check_codex, check_hooks, check_health]


def run_checks(s: Settings) -> list[Check]:
    return [fn(s) for fn in CHECKS]
