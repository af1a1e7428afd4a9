"""A chat with the bot in the terminal, through the local Bot API emulator (the offline demo's front end).

Lines you type become messages from the admin; the bot's replies print as they arrive - HTML turned into
readable text, inline buttons numbered so that typing the number presses the button.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import sys
import threading
from collections.abc import Callable
from typing import Any, TextIO

from bot.emulator.server import BotApiEmulator, CallbackAnswer, EmulatorEvent, SentMessage

__all__ = ["INTRO", "format_event", "format_message", "run_console"]

INTRO = ("Chat with the bot: type a message (try /help); a number presses that button of the latest "
         "keyboard; /quit leaves.")
_QUIT = frozenset({"/quit", "quit", "/exit", "exit"})
_INDENT = "     "
_ANSI = {  # entity type -> (start, end) SGR codes, used only on a terminal
    "bold": ("\x1b[1m", "\x1b[22m"), "italic": ("\x1b[3m", "\x1b[23m"),
    "underline": ("\x1b[4m", "\x1b[24m"), "strikethrough": ("\x1b[9m", "\x1b[29m"),
    "code": ("\x1b[36m", "\x1b[39m"), "pre": ("\x1b[36m", "\x1b[39m"),
    "spoiler": ("\x1b[2m", "\x1b[22m"), "text_link": ("\x1b[4m", "\x1b[24m"),
}


async def run_console(emu: BotApiEmulator, chat_id: int, *, user_id: int | None = None,
                      stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout, prompt: str = "you> ",
                      reply_wait: float = 3.0, settle: float = 0.25) -> None:
    """Chat with the bot as the user of ``chat_id`` until /quit, ``quit`` or end of input.

    After each input it waits up to ``reply_wait`` s for the bot to react and then until it has been quiet
    for ``settle`` s, so replies print before the next prompt; later messages still print when they come.
    """
    emu.add_chat(chat_id)  # the admin "has opened the chat", so the bot may write first
    screen = _Screen(stdout, prompt, echo_input=not _isatty(stdin))
    events = emu.subscribe()
    printer = asyncio.create_task(_print_events(events, chat_id, screen))
    lines = _LineReader(stdin)
    screen.line(INTRO)
    try:
        while True:
            screen.show_prompt()
            line = await lines.readline()
            if line is None:  # end of input (Ctrl-D, or the end of a piped script)
                screen.end_input()
                break
            text = line.strip()
            screen.end_prompt(text)
            if text.lower() in _QUIT:
                break
            if text and _handle_input(emu, chat_id, user_id, text, screen):
                await screen.wait_for_output(reply_wait, settle)
    finally:
        lines.close()
        emu.unsubscribe(events)
        await _drain(events, chat_id, screen)
        printer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await printer


def _handle_input(emu: BotApiEmulator, chat_id: int, user_id: int | None, text: str, screen: _Screen) -> bool:
    """Send a message or press a button; returns whether the bot is expected to react."""
    screen.expect_output()
    if not text.isdigit():
        emu.inject_message(chat_id, text, user_id=user_id)
        return True
    number = int(text)
    message = _latest_keyboard(emu, chat_id)
    if message is None:
        screen.line(f"(no bot message has buttons to press right now, so {number} does nothing)")
        return False
    buttons = message.buttons
    if not 1 <= number <= len(buttons):
        screen.line(f"(the latest keyboard has buttons 1-{len(buttons)}; there is no [{number}])")
        return False
    button = buttons[number - 1]
    if "callback_data" not in button:
        target = button.get("url") or next((k for k in button if k != "text"), "?")
        screen.line(f"([{number}] {button.get('text', '')} is not a callback button: it opens {target})")
        return False
    screen.line(f"(pressed [{number}] {button.get('text', '')})")
    emu.press_button(chat_id, message.message_id, button["callback_data"], user_id=user_id)
    return True


def _latest_keyboard(emu: BotApiEmulator, chat_id: int) -> SentMessage | None:
    for message in reversed(emu.sent(chat_id)):
        if not message.deleted and message.buttons:
            return message
    return None


async def _print_events(events: asyncio.Queue[EmulatorEvent], chat_id: int, screen: _Screen) -> None:
    while True:
        event = await events.get()
        _print_event(event, chat_id, screen)


async def _drain(events: asyncio.Queue[EmulatorEvent], chat_id: int, screen: _Screen) -> None:
    while not events.empty():
        _print_event(events.get_nowait(), chat_id, screen)


def _print_event(event: EmulatorEvent, chat_id: int, screen: _Screen) -> None:
    if event.chat_id != chat_id:
        return
    text = format_event(event, color=screen.color)
    if text:
        screen.output(text)


# ------------------------------------------------------------------------------------------ formatting


def format_event(event: EmulatorEvent, *, color: bool = False) -> str:
    """The transcript text for one emulator event ("" for events with nothing to show)."""
    if event.kind == "callback_answer" and event.answer is not None:
        return _format_answer(event.answer)
    if event.message is None:
        return ""
    if event.kind == "deleted":
        return f"bot: (deleted message #{event.message.message_id})"
    return format_message(event.message, color=color, edited=event.kind == "edited")


def _format_answer(answer: CallbackAnswer) -> str:
    if not answer.text:
        return ""
    return f"bot ({'alert' if answer.show_alert else 'notice'}): {answer.text}"


def format_message(message: SentMessage, *, color: bool = False, edited: bool = False) -> str:
    """A bot message as terminal text: body, then the inline buttons numbered across the keyboard."""
    shown = message.text if message.kind == "text" else message.caption or ""
    body = _render_text(shown, message.entities, color)
    if message.kind != "text":
        icon = "📎" if message.kind == "document" else "🖼"
        header = f"{icon} {message.filename or message.kind} ({len(message.data)} bytes)"
        body = f"{header}\n{body}" if body else header
    lines = body.split("\n")
    lines += _button_lines(message.reply_markup)
    label = "bot (edited): " if edited else "bot: "
    return "\n".join([label + lines[0], *(_INDENT + line for line in lines[1:])])


def _button_lines(markup: dict[str, Any] | None) -> list[str]:
    rows = (markup or {}).get("inline_keyboard") or []
    lines, number = [], 0
    for row in rows:
        cells = []
        for button in row:
            number += 1
            cells.append(f"[{number}] {button.get('text', '')}")
        lines.append("   ".join(cells))
    return lines


def _render_text(text: str, entities: list[dict[str, Any]], color: bool) -> str:
    """Insert ANSI styles (terminal only) and show link targets; entity offsets are UTF-16 units."""
    index_of = _utf16_index_map(text)
    inserts: list[tuple[int, int, str]] = []  # (char index, order, text); closers sort before openers
    for entity in entities:
        start = index_of.get(entity["offset"], len(text))
        end = index_of.get(entity["offset"] + entity["length"], len(text))
        codes = _ANSI.get(entity["type"]) if color else None
        if codes:
            inserts += [(start, 1, codes[0]), (end, 0, codes[1])]
        url = entity.get("url")
        if entity["type"] == "text_link" and url and url != text[start:end]:
            inserts.append((end, 0, f" ({url})"))
    out, last = [], 0
    for index, _, piece in sorted(inserts, key=lambda item: (item[0], item[1])):
        out += [text[last:index], piece]
        last = index
    out.append(text[last:])
    return "".join(out)


def _utf16_index_map(text: str) -> dict[int, int]:
    mapping, units = {0: 0}, 0
    for index, char in enumerate(text, start=1):
        units += 2 if ord(char) > 0xFFFF else 1
        mapping[units] = index
    return mapping


# ------------------------------------------------------------------------------------------ terminal


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class _Screen:
    """Writes the transcript and keeps the prompt in the right place when messages arrive late."""

    def __init__(self, stdout: TextIO, prompt: str, *, echo_input: bool) -> None:
        self.out = stdout
        self.prompt = prompt
        self.echo_input = echo_input
        self.color = _isatty(stdout)
        self.prompt_open = False
        self._activity = asyncio.Event()

    def write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    def line(self, text: str) -> None:
        self.write(text + "\n")

    def show_prompt(self) -> None:
        self.write(self.prompt)
        self.prompt_open = True

    def end_prompt(self, typed: str) -> None:
        """Input arrived: on a terminal the user's Enter ended the line; from a pipe, echo what was read."""
        if self.echo_input:
            self.write(typed + "\n")
        self.prompt_open = False

    def end_input(self) -> None:
        if self.prompt_open:
            self.write("\n")
        self.prompt_open = False

    def output(self, text: str) -> None:
        if self.prompt_open:  # a message arrived while waiting for input: print it above a fresh prompt
            self.write("\r\x1b[K" if self.color else "\n")
        self.line(text)
        if self.prompt_open:
            self.write(self.prompt)
        self._activity.set()

    def expect_output(self) -> None:
        self._activity.clear()

    async def wait_for_output(self, first: float, quiet: float) -> None:
        """Wait up to ``first`` s for output, then until none came for ``quiet`` s (capped)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + first + 5 * quiet
        timeout = first
        while loop.time() < deadline:
            try:
                await asyncio.wait_for(self._activity.wait(), timeout)
            except TimeoutError:
                return
            self._activity.clear()
            timeout = quiet


class _LineReader:
    """Lines from ``stdin`` without blocking the event loop.

    A real file descriptor is watched with ``loop.add_reader`` - no thread left blocked in ``readline()``
    after /quit, which could otherwise wedge interpreter shutdown on stdin's lock. Anything else (StringIO,
    Windows, regular files that epoll refuses) is read by a daemon thread.
    """

    def __init__(self, stdin: TextIO) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._closed = threading.Event()
        self._fd: int | None = None
        self._decoder = codecs.getincrementaldecoder(getattr(stdin, "encoding", None) or "utf-8")("replace")
        self._pending = ""
        if not self._watch_fd(stdin):
            threading.Thread(target=self._thread_main, args=(stdin.readline,), name="console-stdin",
                             daemon=True).start()

    async def readline(self) -> str | None:
        """The next line (without its newline), or None at end of input."""
        return await self._queue.get()

    def close(self) -> None:
        self._closed.set()
        if self._fd is not None:
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_reader(self._fd)
            self._fd = None

    def _watch_fd(self, stdin: TextIO) -> bool:
        try:
            fd = stdin.fileno()
            self._loop.add_reader(fd, self._on_readable)
        except (AttributeError, OSError, ValueError, NotImplementedError):
            return False
        self._fd = fd
        return True

    def _on_readable(self) -> None:
        assert self._fd is not None
        try:
            chunk = os.read(self._fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._push_text(self._decoder.decode(b"", final=True))
            if self._pending:
                self._queue.put_nowait(self._pending)
                self._pending = ""
            self._queue.put_nowait(None)
            self.close()
            return
        self._push_text(self._decoder.decode(chunk))

    def _push_text(self, text: str) -> None:
        *complete, self._pending = (self._pending + text).split("\n")
        for line in complete:
            self._queue.put_nowait(line.rstrip("\r"))

    def _thread_main(self, readline: Callable[[], str]) -> None:
        while not self._closed.is_set():
            try:
                line = readline()
            except (OSError, ValueError):
                line = ""
            item = line.rstrip("\r\n") if line else None
            try:
                self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
            except RuntimeError:  # the loop is gone: nobody is listening any more
                return
            if item is None:
                return
