"""SENTINEL through Telegram: the real hook blocks, the bot alerts with buttons, the admin's press lets
exactly the identical call through once. Real hook processes, the real bot, the local Bot API emulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import update

from services.sentinel import approvals, audit, spool
from services.sentinel.report import state_dirs
from services.store.db import transaction
from services.store.models import OutboxMessage
from tests.bot_fixtures import ADMIN, BotHarness

ROOT = Path(__file__).resolve().parents[1]


def run_hook(h: BotHarness, command: str, *, session: str = "sess-1", cwd: str = "/home/dev/project"
             ) -> subprocess.CompletedProcess[str]:
    payload = {"session_id": session, "transcript_path": "/tmp/t.jsonl", "cwd": cwd, "permission_mode": "default",
               "hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"command": command},
               "tool_use_id": "toolu_1"}
    s = h.rt.settings
    env = {**os.environ, "AISTACK_HOME": str(s.aistack_home), "SENTINEL_AUDIT_DIR": str(s.sentinel_audit_dir),
           "HOME": "/home/dev", "SENTINEL_DAEMON": "off"}
    env.pop("SENTINEL_POLICY", None)
    return subprocess.run([sys.executable, str(ROOT / "hooks" / "pre_tool_use.py")], input=json.dumps(payload),
                          env=env, capture_output=True, text=True, timeout=30)


async def test_block_alert_allow_once_lets_the_identical_call_through_once(bot_stack: BotHarness) -> None:
    first = run_hook(bot_stack, "rm -rf /home/dev/project")
    assert first.returncode == 2 and "SENTINEL blocked [rm-recursive-force]" in first.stderr
    code = first.stderr.rsplit("approve code ", 1)[1].strip().rstrip(".")

    [alert] = await bot_stack.emu.wait_for_sent(1, chat_id=ADMIN, timeout=10)
    assert "SENTINEL blocked" in alert.text and "rm -rf /home/dev/project" in alert.text
    assert "/home/dev/project" in alert.text and f"Code: {code}" in alert.text
    assert [b["text"] for b in alert.buttons] == ["✅ Allow once", "⛔ Keep blocked"]

    # The agent retries at once: same message, higher count, no second message.
    assert run_hook(bot_stack, "rm -rf /home/dev/project").returncode == 2
    await bot_stack.emu.wait_until(lambda: "Repeated: 2×" in alert.text, timeout=10)
    assert len(bot_stack.emu.sent(ADMIN)) == 1

    allow = next(b["callback_data"] for b in alert.buttons if b["text"] == "✅ Allow once")
    bot_stack.emu.press_button(ADMIN, alert.message_id, allow)
    await bot_stack.emu.wait_until(lambda: "Allowed once by @admin" in alert.text, timeout=10)
    assert alert.buttons == []  # decided: the keyboard is gone

    changed = run_hook(bot_stack, "rm -rf /home/dev/project/")  # any change needs its own approval
    assert changed.returncode == 2
    again = run_hook(bot_stack, "rm -rf /home/dev/project")
    assert again.returncode == 0, again.stderr
    once_more = run_hook(bot_stack, "rm -rf /home/dev/project")
    assert once_more.returncode == 2  # single use

    events = [e for e in audit.read_events(str(bot_stack.rt.settings.sentinel_audit_dir)) if e.get("event") == "pre"]
    assert [e["decision"] for e in events] == ["block", "block", "block", "allow", "block"]
    assert events[3].get("approved_by") == "@admin"


async def test_keep_blocked_records_the_decision(bot_stack: BotHarness) -> None:
    assert run_hook(bot_stack, "git push --force origin main").returncode == 2
    [alert] = await bot_stack.emu.wait_for_sent(1, chat_id=ADMIN, timeout=10)
    keep = next(b["callback_data"] for b in alert.buttons if b["text"] == "⛔ Keep blocked")
    # The admin can be faster than the delivery job's bookkeeping: forget the recorded message ids.
    with transaction(bot_stack.rt.engine, write=True) as conn:
        conn.execute(update(OutboxMessage).values(sent_refs="{}"))
    bot_stack.emu.press_button(ADMIN, alert.message_id, keep)
    await bot_stack.emu.wait_until(lambda: "Kept blocked by @admin" in alert.text, timeout=10)
    assert run_hook(bot_stack, "git push --force origin main").returncode == 2


async def test_fail_closed_blocks_come_without_buttons(bot_stack: BotHarness) -> None:
    alerts_dir, approvals_dir = state_dirs(bot_stack.rt.settings)
    spool.write_alert({"id": "x1", "ts": "2026-11-25T10:00:00Z", "call_hash": "", "code": "", "tool_name": "?",
                       "rule_id": "sentinel-bad-input", "severity": "block", "reason": "stdin is not JSON",
                       "subject": "", "cwd": "", "approvable": False}, directory=alerts_dir)
    [alert] = await bot_stack.emu.wait_for_sent(1, chat_id=ADMIN, timeout=10)
    assert "cannot be approved" in alert.text and alert.reply_markup is None
    assert os.listdir(alerts_dir) == []  # ingested and acknowledged
    assert approvals.decision("0" * 64, directory=approvals_dir) is None


async def test_audit_command_counts_today(bot_stack: BotHarness) -> None:
    run_hook(bot_stack, "ls -la")
    run_hook(bot_stack, "cat ~/.ssh/id_rsa")
    run_hook(bot_stack, "cat .env")
    [msg] = await bot_stack.say("/audit")
    assert "Tool calls: 3" in msg.text and "allow 1" in msg.text and "block 1" in msg.text
    assert "[secret-file-read] cat ~/.ssh/id_rsa" in msg.text  # the last blocks, with their rule
    [digest] = await bot_stack.say("/digest")
    assert "SENTINEL today" in digest.text and "Tool calls: 3" in digest.text
