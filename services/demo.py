"""Demo data for the offline demo: a believable day of bot activity in a throwaway home."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.runtime import Runtime
from services.sentinel import audit, spool
from services.sentinel.model import ToolCall
from services.sentinel.report import state_dirs
from services.store import events, outbox

DEMO_CHAT = 100001
STRANGER = 666


def seed(rt: Runtime, now: datetime | None = None) -> None:
    engine = rt.engine
    now = now or datetime.now(UTC)
    for hours_ago, command in [(20, "start"), (9, "digest"), (7, "help"), (2, "digest")]:
        events.record_event(engine, kind="command", command=command, outcome="ok", chat_id=DEMO_CHAT,
                            user_id=DEMO_CHAT, username="you", at=now - timedelta(hours=hours_ago))
    events.record_event(engine, kind="command", command="help", outcome="refused", chat_id=STRANGER,
                        user_id=STRANGER, username="curious_stranger", detail="not an admin chat",
                        at=now - timedelta(hours=5))
    outbox.enqueue(engine, "👋 Welcome to the aistack demo. This message came through the outbox, the same way "
                   "hooks and cron jobs reach you. Try /help, /digest, or press a button by its number.",
                   source="demo")
    _sentinel_block(rt)


def _sentinel_block(rt: Runtime) -> None:
    """A blocked agent call, as the hook would have logged and spooled it: shows the approval buttons."""
    call = ToolCall("Bash", {"command": "rm -rf ~/clients/acme/build"}, cwd="/home/you/clients/acme",
                    session_id="demo-session-1")
    h = call.call_hash()
    audit.append({"event": "pre", "session_id": call.session_id, "tool_use_id": "demo", "tool_name": "Bash",
                  "decision": "block", "rule_id": "rm-recursive-force", "subject": call.tool_input["command"],
                  "cwd": call.cwd}, str(rt.settings.sentinel_audit_dir))
    spool.write_alert({"id": "demo", "ts": datetime.now(UTC).isoformat(), "call_hash": h, "code": h[:6].upper(),
                       "session_id": call.session_id, "tool_use_id": "demo", "tool_name": "Bash",
                       "rule_id": "rm-recursive-force", "severity": "block",
                       "reason": "rm recursive + force outside /tmp deletes without asking and cannot be undone.",
                       "alternative": "Remove specific files, or rm -r without -f inside the project.",
                       "subject": call.tool_input["command"], "cwd": call.cwd, "approvable": True},
                      directory=state_dirs(rt.settings)[0])
