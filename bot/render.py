"""Everything that turns results into Telegram messages. One parse mode everywhere: HTML.

Handlers build HTML with `esc()` around every piece of outside text; `split_html()` cuts long
replies on line boundaries and re-opens tags that a cut leaves open, so every chunk parses.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from services.digest import Digest

LIMIT = 4096
PARSE_MODE = "HTML"
_TAG = re.compile(r"<(/?)([a-zA-Z][\w-]*)([^>]*)>")
_ENTITY_TAIL = re.compile(r"&[#\w]{0,10}$")


def esc(text: object) -> str:
    """Escape outside text for Telegram HTML (only &, <, > are special there)."""
    return html.escape(str(text), quote=False)


def bold(text: object) -> str:
    return f"<b>{esc(text)}</b>"


def code(text: object) -> str:
    return f"<code>{esc(text)}</code>"


def _open_tags_after(fragment: str, stack: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Track which tags are still open after `fragment`, as (name, full opening tag)."""
    stack = list(stack)
    for m in _TAG.finditer(fragment):
        closing, name = m.group(1), m.group(2).lower()
        if closing:
            for i in range(len(stack) - 1, -1, -1):
                if stack[i][0] == name:
                    del stack[i:]
                    break
        else:
            stack.append((name, m.group(0)))
    return stack


def _hard_cut(line: str, room: int) -> int:
    """Where to cut an over-long line: at most `room` chars, never inside a tag or an &entity;."""
    cut = room
    lt, gt = line.rfind("<", 0, cut), line.rfind(">", 0, cut)
    if lt > gt:  # inside a tag
        cut = lt
    m = _ENTITY_TAIL.search(line[:cut])
    if m:
        cut = m.start()
    return max(cut, 1)


def split_html(text: str, limit: int = LIMIT) -> list[str]:
    """Split HTML into chunks of at most `limit` characters, on line boundaries where possible."""
    if len(text) <= limit:
        return [text]
    chunks: list[str] = []
    stack: list[tuple[str, str]] = []
    prefix = ""
    current = ""
    reserve = 200  # room for closing/re-opening tags carried across a cut

    def flush() -> None:
        nonlocal current, prefix, stack
        body = current.rstrip("\n")
        stack = _open_tags_after(current, stack)
        closers = "".join(f"</{name}>" for name, _ in reversed(stack))
        if body.strip() or closers:
            chunks.append(prefix + body + closers)
        prefix = "".join(tag for _, tag in stack)
        current = ""

    for line in text.splitlines(keepends=True):
        while len(prefix) + len(current) + len(line) > limit - reserve:
            room = limit - reserve - len(prefix) - len(current)
            if current and room < len(line):
                flush()
                continue
            cut = _hard_cut(line, max(room, 1))
            current += line[:cut]
            line = line[cut:]
            flush()
        current += line
    if current:
        flush()
    return [c for c in chunks if c.strip()]


Buttons = Sequence[Sequence[tuple[str, str]]]


def keyboard(rows: Buttons | None) -> InlineKeyboardMarkup | None:
    """Rows of (label, callback_data) → an inline keyboard (callback_data must fit Telegram's 64 bytes)."""
    if not rows:
        return None
    for row in rows:
        for _, data in row:
            if not 0 < len(data.encode()) <= 64:
                raise ValueError(f"callback_data {data!r} must be 1–64 bytes")
    return InlineKeyboardMarkup([[InlineKeyboardButton(label, callback_data=data) for label, data in row]
                                 for row in rows])


def digest_html(d: Digest, tz_name: str = "UTC") -> str:
    from zoneinfo import ZoneInfo

    when = d.until.astimezone(ZoneInfo(tz_name)).strftime("%Y-%m-%d %H:%M %Z")
    parts = [f"📋 <b>Daily digest</b> — {esc(when)}"]
    if not d.sections:
        parts.append("Nothing to report.")
    for s in d.sections:
        parts.append("")
        parts.append(bold(s.title))
        parts.extend(esc(line) for line in s.lines)
    return "\n".join(parts)
