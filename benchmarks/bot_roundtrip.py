"""Round trip: an injected /help to the bot's reply, through python-telegram-bot's real HTTP stack
against the local Bot API emulator (both in this process, on 127.0.0.1).

    .venv/bin/python benchmarks/bot_roundtrip.py [--updates 200]

Sequential: one /help at a time, paced at 20 per second (below the 30 msg/s that the bot's rate
limiter allows, as Telegram requires; faster pacing measures the limiter, not the bot), median and
p95 of inject→reply. Burst: all updates injected at once,
then how long until every reply arrived (the bot's rate limiter caps Telegram sends at 30/s) and
whether any update was lost.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.app import build_application, serving
from bot.emulator import BotApiEmulator
from services.runtime import bootstrap
from services.settings import load_settings

TOKEN = "123456:BENCH-token-not-real"
ADMIN = 4242


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


async def main(n: int) -> None:
    emu = BotApiEmulator(TOKEN)
    await emu.start()
    with tempfile.TemporaryDirectory() as home:
        rt = bootstrap(load_settings(env_file=None, aistack_home=Path(home), database_url=None,
                                     telegram_bot_token=TOKEN, admin_chat_id=(ADMIN,),
                                     telegram_base_url=emu.base_url, outbox_interval=60))
        async with serving(build_application(rt), poll_timeout=10):
            for _ in range(5):  # warm-up: connections, first-call imports
                before = len(emu.sent(ADMIN))
                emu.inject_message(ADMIN, "/help")
                await emu.wait_for_sent(before + 1, chat_id=ADMIN, timeout=10)
            lat: list[float] = []
            lost = 0
            for _ in range(n):
                before = len(emu.sent(ADMIN))
                t0 = time.perf_counter()
                emu.inject_message(ADMIN, "/help")
                try:
                    await emu.wait_for_sent(before + 1, chat_id=ADMIN, timeout=10)
                except TimeoutError:
                    lost += 1
                    continue
                lat.append((time.perf_counter() - t0) * 1000)
                await asyncio.sleep(max(0.0, 0.05 - (time.perf_counter() - t0)))
            print(f"sequential: {n} /help, median {statistics.median(lat):.1f} ms, p95 {pct(lat, 95):.1f} ms, "
                  f"max {max(lat):.1f} ms, lost {lost}")

            before = len(emu.sent(ADMIN))
            t0 = time.perf_counter()
            for _ in range(n):
                emu.inject_message(ADMIN, "/help")
            with contextlib.suppress(TimeoutError):
                await emu.wait_for_sent(before + n, chat_id=ADMIN, timeout=60)
            got = len(emu.sent(ADMIN)) - before
            secs = time.perf_counter() - t0
            print(f"burst: {n} /help injected at once, {got} replies in {secs:.2f} s "
                  f"({got / secs:.0f}/s, rate limiter 30/s), lost {n - got}")
    await emu.stop()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--updates", type=int, default=200)
    asyncio.run(main(ap.parse_args().updates))
