"""The offline demo: the local Bot API emulator, the real bot against it, and a chat in the terminal."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path
from typing import TextIO

from bot.app import build_application, serving
from bot.console import run_console
from bot.emulator import BotApiEmulator
from bot.logs import setup_logging
from services import demo
from services.runtime import bootstrap
from services.settings import load_settings

DEMO_TOKEN = "100001:DEMO-offline-token-not-real"


async def run_demo(*, home: Path | None = None, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout,
                   keep: bool = False) -> None:
    tmp = home or Path(tempfile.mkdtemp(prefix="aistack-demo-"))
    log_path = setup_logging(tmp, console=False)
    emu = BotApiEmulator(DEMO_TOKEN)
    await emu.start()
    try:
        settings = load_settings(env_file=None, aistack_home=tmp, database_url=None,
                                 telegram_bot_token=DEMO_TOKEN, admin_chat_id=(demo.DEMO_CHAT,),
                                 telegram_base_url=emu.base_url, outbox_interval=1.0,
                                 sentinel_audit_dir=tmp / "audit", sentinel_policy=None,
                                 claude_home=tmp / "claude", codex_home=tmp / "codex", lore_root=tmp / "lore")
        rt = bootstrap(settings)
        demo.seed(rt)
        print(f"aistack demo — offline: a local Bot API emulator on {emu.base_url.removesuffix('/bot')}, "
              f"the real bot against it, demo data in {tmp} (log: {log_path}).", file=stdout)
        async with serving(build_application(rt)):
            await run_console(emu, demo.DEMO_CHAT, stdin=stdin, stdout=stdout)
    finally:
        await emu.stop()
        if not keep and home is None:
            shutil.rmtree(tmp, ignore_errors=True)
