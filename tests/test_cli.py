"""The `aistack` command line as a user runs it: a real process, real environment variables."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bot.emulator import BotApiEmulator
from services.settings import load_settings
from services.store import outbox
from services.store.db import make_engine
from tests.bot_fixtures import TOKEN

ROOT = Path(__file__).resolve().parents[1]


def aistack(*args: str, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "ADMIN_", "DATABASE_"))}
    full.update({"AISTACK_HOME": str(home), "COLUMNS": "200", "CLAUDE_HOME": str(home / "claude"),
                 "CODEX_HOME": str(home / "codex"), **env})
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], env=full, cwd=home, capture_output=True,
                          text=True, timeout=60)


def test_help_lists_every_command_with_one_line(tmp_path: Path) -> None:
    out = aistack("--help", home=tmp_path)
    assert out.returncode == 0
    for name in ("run", "bot", "demo", "doctor", "notify", "digest", "db"):
        assert f" {name} " in out.stdout, name


@pytest.mark.parametrize(("var", "value", "says"), [
    ("ADMIN_CHAT_ID", "12,abc", "ADMIN_CHAT_ID: 'abc' is not a chat id"),
    ("TZ", "Mars/Olympus", "TZ: unknown time zone"),
    ("DIGEST_TIME", "25:99", "DIGEST_TIME:"),
    ("TELEGRAM_BOT_TOKEN", "not-a-token", "TELEGRAM_BOT_TOKEN: must look like"),
    ("DATABASE_URL", "mysql://x/y", "DATABASE_URL: must start with"),
])
def test_bad_setting_stops_with_one_line_and_exit_2(tmp_path: Path, var: str, value: str, says: str) -> None:
    out = aistack("notify", "hi", home=tmp_path, **{var: value})
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0, out.stderr
    assert says in out.stderr and "Traceback" not in out.stderr


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("ADMIN_CHAT_ID=1, 2\nDIGEST_TIME=07:30\n")
    os.chdir(tmp_path)
    try:
        s = load_settings()
    finally:
        os.chdir(ROOT)
    assert s.admin_chat_id == (1, 2) and s.digest_time.hour == 7


def test_notify_queues_a_row_the_bot_will_deliver(tmp_path: Path) -> None:
    out = aistack("notify", "backup done", "--source", "cron", home=tmp_path)
    assert out.returncode == 0, out.stderr
    engine = make_engine(f"sqlite:///{tmp_path / 'aistack.db'}")
    [item] = outbox.due(engine)
    assert (item.text, item.source) == ("backup done", "cron")


def test_empty_notification_is_refused(tmp_path: Path) -> None:
    out = aistack("notify", "   ", home=tmp_path)
    assert out.returncode == 2 and "empty" in out.stderr


async def test_doctor_reports_what_is_fine_and_what_to_fix(tmp_path: Path) -> None:
    emu = BotApiEmulator(TOKEN)
    await emu.start()
    try:
        base = emu.base_url.removesuffix("/bot")
        ok = await _run(aistack, "doctor", home=tmp_path, TELEGRAM_BOT_TOKEN=TOKEN, ADMIN_CHAT_ID="5",
                        TELEGRAM_BASE_URL=base)
        assert "bot api" in ok.stdout and "answers" in ok.stdout
        assert "claude_home" in ok.stdout and "not found" in ok.stdout
        assert ok.returncode == 0, ok.stdout
        bad = await _run(aistack, "doctor", home=tmp_path, TELEGRAM_BOT_TOKEN="999:wrong-token-here",
                         ADMIN_CHAT_ID="5", TELEGRAM_BASE_URL=base)
        assert bad.returncode == 1 and "HTTP 401" in bad.stdout
    finally:
        await emu.stop()


async def _run(fn, *args, **kw):  # type: ignore[no-untyped-def]
    import asyncio

    return await asyncio.to_thread(fn, *args, **kw)


def test_db_upgrade_and_current(tmp_path: Path) -> None:
    up = aistack("db", "upgrade", home=tmp_path)
    assert up.returncode == 0, up.stderr
    cur = aistack("db", "current", home=tmp_path)
    assert re.search(r"current: (\w+)  head: \1$", cur.stdout.strip()), cur.stdout


def test_run_without_token_is_the_offline_demo(tmp_path: Path) -> None:
    """`./dev run` with no token: the emulator, the real bot and a console chat on demo data."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "ADMIN_", "DATABASE_"))}
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "run"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=full, cwd=tmp_path, text=True, bufsize=1)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout or []], daemon=True).start()
    seen: list[str] = []

    def until(text: str, timeout: float = 20.0) -> None:
        end = time.monotonic() + timeout
        while not any(text in line for line in seen):
            left = end - time.monotonic()
            assert left > 0, f"{text!r} never appeared in:\n{''.join(seen)}"
            with contextlib.suppress(queue.Empty):
                seen.append(lines.get(timeout=left))

    def say(line: str) -> None:
        assert proc.stdin is not None
        proc.stdin.write(line + "\n")
        proc.stdin.flush()

    try:
        say("/help")
        until("/digest — Send the daily digest now")  # the real bot answered
        until("[1] ✅ Allow once   [2] ⛔ Keep blocked")  # the demo's SENTINEL block, with its buttons
        say("1")  # press "Allow once" by its number
        until("Allowed once by")
        say("/digest")
        until("Refused attempts: 1")  # demo data
        say("/quit")
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
    assert "offline demo" in (proc.stderr.read() if proc.stderr else "")
