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
    _lore(rt, now)
    _gateway(rt, now)


_DEMO_SESSIONS = [  # (client folder, session id, prompt, answer, model, minutes ago)
    ("/home/you/clients/acme/api", "d3m0a1c3-0000-4000-8000-000000000001",
     "The retry test in tests/test_client.py is flaky on CI. Find the cause.",
     "The test measures wall-clock time around the backoff loop; I injected a fake clock into RetryingClient.",
     "claude-sonnet-4-5-20250929", 300),
    ("/home/you/clients/acme/api", "d3m0a1c3-0000-4000-8000-000000000002",
     "Add a --dry-run flag to scripts/migrate.py that prints the SQL instead of running it.",
     "Added --dry-run: migrate.py now prints each statement and exits before connecting.",
     "claude-haiku-4-5-20251001", 90),
    ("/home/you/internal/dotfiles", "d3m0a1c3-0000-4000-8000-000000000003",
     "Why does my zsh prompt take two seconds to appear?",
     "The git status segment scans a large untracked folder; add it to .gitignore or disable the segment.",
     "claude-sonnet-4-5-20250929", 40),
]


def _lore(rt: Runtime, now: datetime) -> None:
    """Three Claude Code transcripts for two clients, imported into the demo archive: /search and /usage work."""
    import json

    from services.lore import service

    s = rt.settings
    root = service.lore_root(s)
    root.mkdir(parents=True, exist_ok=True)
    (root / "clients.yaml").write_text("default: internal\nclients:\n  acme:\n    paths: [/home/you/clients/acme]\n"
                                      "    access_level: confidential\n")
    for cwd, sid, prompt, answer, model, minutes in _DEMO_SESSIONS:
        t0 = now - timedelta(minutes=minutes)
        base = {"sessionId": sid, "cwd": cwd, "version": "2.0.31", "gitBranch": "main", "isSidechain": False}
        lines = [
            {**base, "type": "user", "uuid": f"{sid}-u", "parentUuid": None, "timestamp": _iso(t0),
             "message": {"role": "user", "content": prompt}},
            {**base, "type": "assistant", "uuid": f"{sid}-a", "parentUuid": f"{sid}-u",
             "timestamp": _iso(t0 + timedelta(seconds=40)), "requestId": f"req_demo{minutes}",
             "message": {"id": f"msg_demo{minutes}", "role": "assistant", "model": model, "stop_reason": "end_turn",
                         "content": [{"type": "text", "text": answer}],
                         "usage": {"input_tokens": 1200, "output_tokens": 350, "cache_creation_input_tokens": 4000,
                                   "cache_read_input_tokens": 18000}}},
        ]
        folder = s.claude_home / "projects" / "".join(c if c.isalnum() else "-" for c in cwd)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{sid}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    service.import_all(s, include_inbox=False, platforms=["claude_code"])


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _gateway(rt: Runtime, now: datetime) -> None:
    """A week of gateway calls and a budget for acme: /spend draws its chart, /budget has something to show."""
    from decimal import Decimal

    from services.gateway import budgets, ledger

    budgets.set_budget(rt.engine, "acme", Decimal("50"), period="month")
    for day in range(7):
        for client, model, cost in (("acme", "anthropic/claude-sonnet-4-5-20250929", "1.85"),
                                    ("acme", "ollama_chat/llama3.2", "0"),
                                    ("internal", "openai/gpt-4o", "0.42")):
            budgets.settle(rt.engine, None, ledger.LedgerRow(
                ts=now - timedelta(days=day), client=client, tags=["demo"], caller="agent",
                model_asked="local" if "ollama" in model else model.split("/")[0].replace("anthropic", "claude"),
                model_used=model, input_tokens=2400, output_tokens=600, cost_usd=Decimal(cost) * (day % 3 + 1),
                latency_ms=900.0, request_id=f"demo-{day}-{client}"), tz=rt.settings.zone)


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
