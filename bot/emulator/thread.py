"""Run a :class:`BotApiEmulator` on its own event loop in a daemon thread.

For synchronous code (a CLI smoke test, a bot started with ``run_polling()`` in the main thread) that needs
a Bot API to talk to. Every call hops onto the emulator's loop, because the emulator's state is deliberately
unlocked and only ever touched from that loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from bot.emulator.server import BotApiEmulator, CallbackAnswer, ChatAction, EmulatorEvent, SentMessage

__all__ = ["EmulatorThread"]

T = TypeVar("T")


class EmulatorThread:
    """``with EmulatorThread(TOKEN) as emu:`` - an emulator served from a background thread.

    Offers the emulator's inspection/injection API synchronously; ``emulator`` is the underlying object
    (touch it only from callbacks running on its loop, e.g. :meth:`add_listener` callbacks).
    """

    def __init__(self, token: str, bot_username: str = "aistack_demo_bot", *, host: str = "127.0.0.1",
                 port: int = 0, start_timeout: float = 10.0, **emulator_kwargs: Any) -> None:
        self.emulator = BotApiEmulator(token, bot_username, **emulator_kwargs)
        self._host, self._port, self._start_timeout = host, port, start_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # ------------------------------------------------------------------------------------ lifecycle

    def start(self) -> EmulatorThread:
        if self._thread is not None:
            raise RuntimeError("already started")
        self._thread = threading.Thread(target=self._run, name="bot-api-emulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(self._start_timeout):
            raise TimeoutError("the emulator thread did not start in time")
        if self._error is not None:
            raise RuntimeError("the emulator failed to start") from self._error
        return self

    def stop(self) -> None:
        """Stop the server (releasing long polls), then the loop; idempotent."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if not loop.is_closed():
            loop.call_soon_threadsafe(loop.stop)
        thread.join(self._start_timeout)
        self._thread = None

    def __enter__(self) -> EmulatorThread:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self.emulator.start(self._host, self._port))
        except BaseException as err:  # reported to start() in the caller's thread
            self._error = err
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self.emulator.stop())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    # ---------------------------------------------------------------------------------- plumbing

    def call(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        """Run ``fn()`` on the emulator's loop and return its result (directly if already there)."""
        if threading.current_thread() is self._thread:
            return fn()
        loop = self._running_loop()

        async def run() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), loop).result(timeout)

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None or self._thread is None:
            raise RuntimeError("the emulator thread is not running")
        return self._loop

    # --------------------------------------------------------------------------- the emulator API

    @property
    def base_url(self) -> str:
        return self.emulator.base_url

    @property
    def base_file_url(self) -> str:
        return self.emulator.base_file_url

    @property
    def token(self) -> str:
        return self.emulator.token

    def add_chat(self, chat_id: int, **kwargs: Any) -> dict[str, Any]:
        return self.call(lambda: self.emulator.add_chat(chat_id, **kwargs))

    def inject_message(self, chat_id: int, text: str, **kwargs: Any) -> int:
        return self.call(lambda: self.emulator.inject_message(chat_id, text, **kwargs))

    def press_button(self, chat_id: int, message_id: int, callback_data: str, **kwargs: Any) -> str:
        return self.call(lambda: self.emulator.press_button(chat_id, message_id, callback_data, **kwargs))

    def fail_next(self, method: str, times: int = 1, error_code: int | None = None,
                  description: str | None = None, retry_after: int | None = None) -> None:
        self.call(lambda: self.emulator.fail_next(method, times, error_code, description, retry_after))

    def sent(self, chat_id: int | None = None) -> list[SentMessage]:
        return self.call(lambda: self.emulator.sent(chat_id))

    def pending_updates(self) -> int:
        return self.call(self.emulator.pending_updates)

    @property
    def callback_answers(self) -> list[CallbackAnswer]:
        return self.call(lambda: list(self.emulator.callback_answers))

    @property
    def commands(self) -> list[dict[str, Any]]:
        return self.call(lambda: list(self.emulator.commands))

    @property
    def chat_actions(self) -> list[ChatAction]:
        return self.call(lambda: list(self.emulator.chat_actions))

    @property
    def calls(self) -> dict[str, int]:
        return self.call(lambda: dict(self.emulator.calls))

    def wait_until(self, predicate: Callable[[], T], timeout: float = 10.0) -> T:
        """Block until ``predicate()`` (evaluated on the emulator's loop) is truthy; return its value."""
        future = asyncio.run_coroutine_threadsafe(self.emulator.wait_until(predicate, timeout),
                                                  self._running_loop())
        return future.result(timeout + 5)

    def wait_for_sent(self, count: int, chat_id: int | None = None,
                      timeout: float = 10.0) -> list[SentMessage]:
        """Block until at least ``count`` messages were sent (to ``chat_id``); return them all."""
        future = asyncio.run_coroutine_threadsafe(self.emulator.wait_for_sent(count, chat_id, timeout),
                                                  self._running_loop())
        return future.result(timeout + 5)

    def add_listener(self, callback: Callable[[EmulatorEvent], None]) -> None:
        """``callback(event)`` runs in the emulator thread - keep it short and thread-safe."""
        self.call(lambda: self.emulator.add_listener(callback))

    def remove_listener(self, callback: Callable[[EmulatorEvent], None]) -> None:
        self.call(lambda: self.emulator.remove_listener(callback))
