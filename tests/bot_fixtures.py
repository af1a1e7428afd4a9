"""A running bot against the local Bot API emulator, restartable, on a throwaway home."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from bot.app import build_application, serving
from bot.emulator import BotApiEmulator
from services.runtime import Runtime, bootstrap
from services.settings import load_settings

TOKEN = "123456:TEST-token-not-real"
ADMIN = 4242
STRANGER = 777


def make_settings(home: Path, emu: BotApiEmulator, **over: object):  # type: ignore[no-untyped-def]
    values: dict[str, object] = dict(aistack_home=home, database_url=None, telegram_bot_token=TOKEN,
                                     admin_chat_id=(ADMIN,), telegram_base_url=emu.base_url,
                                     outbox_interval=0.2, tz="UTC", sentinel_audit_dir=home / "audit",
                                     sentinel_policy=None)
    values.update(over)
    return load_settings(env_file=None, **values)


class BotHarness:
    """The emulator plus the real bot; `restart()` builds a fresh Application like a new process would."""

    def __init__(self, emu: BotApiEmulator, rt: Runtime) -> None:
        self.emu, self.rt = emu, rt
        self._stack: AsyncExitStack | None = None

    async def start(self) -> None:
        self._stack = AsyncExitStack()
        self.app = await self._stack.enter_async_context(serving(build_application(self.rt), poll_timeout=1))

    async def stop(self) -> None:
        if self._stack is not None:
            await self._stack.aclose()
            self._stack = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def say(self, text: str, chat_id: int = ADMIN, user_id: int | None = None, count: int = 1,
                  timeout: float = 10.0) -> list:  # type: ignore[type-arg]
        """Inject a message and return the bot's next `count` messages to that chat."""
        before = len(self.emu.sent(chat_id))
        self.emu.inject_message(chat_id, text, user_id=user_id)
        sent = await self.emu.wait_for_sent(before + count, chat_id=chat_id, timeout=timeout)
        return sent[before:]


@pytest.fixture
async def bot_stack(tmp_path: Path) -> AsyncIterator[BotHarness]:
    emu = BotApiEmulator(TOKEN, known_chats=(ADMIN,))  # the admin has /started the bot before
    await emu.start()
    rt = bootstrap(make_settings(tmp_path / "home", emu))
    harness = BotHarness(emu, rt)
    await harness.start()
    try:
        yield harness
    finally:
        await harness.stop()
        await emu.stop()
